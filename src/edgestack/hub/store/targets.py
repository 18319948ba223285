"""Targets: which enrolled devices a list of `protocol.Target` names. Everything that acts on
several devices at once (deployments, rollouts) resolves its targets here."""

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from edgestack.hub.errors import NotFound, Unprocessable
from edgestack.hub.store.tables import DeviceRow
from edgestack.protocol import DeviceChoice

__all__ = ["carrying", "chosen", "resolve"]


def resolve(session: Session, targets: Sequence[str], field: str = "to") -> list[str]:
    """The ids of the enrolled devices any of `targets` names, sorted: a device id names that
    device, `tag:k=v,...` every device carrying all those tags, `all` every device. Targets
    are taken as already valid `protocol.Target`s. Refused (422) when `targets` is empty and
    (404) when a target matches no enrolled device, naming each such target."""
    if not targets:
        raise Unprocessable(
            f"{field}: the list is empty; name at least one target: a device id, "
            "tag:key=value, or all (on the command line --to ID, --to tag:key=value, or --all)"
        )
    enrolled = set(session.scalars(select(DeviceRow.device_id)))
    chosen: set[str] = set()
    unknown: list[str] = []
    unmatched: list[str] = []
    for target in dict.fromkeys(targets):
        matched = _matches(session, target, enrolled)
        if not matched:
            (unmatched if target.startswith("tag:") or target == "all" else unknown).append(target)
        chosen |= matched
    if unknown:
        raise NotFound(
            f"devices not enrolled: {', '.join(unknown)}; enrol them with POST /api/v1/enrol "
            f"or leave them out of {field}"
        )
    if unmatched:
        raise NotFound(
            f"{field}: no enrolled device matches {', '.join(unmatched)}; tag devices with "
            "edgestack devices tag ID key=value (see the tags in edgestack devices), or "
            "change the target"
        )
    return sorted(chosen)


def carrying(terms: Sequence[str]) -> Select[str]:
    """A query for the ids of the enrolled devices carrying every tag of `terms` (each a
    valid `protocol.TagTerm`, `key=value`); every device when `terms` is empty. A query,
    not a list, so a filter on a tag held by many devices binds no parameter per device."""
    query = select(DeviceRow.device_id)
    for key, _, value in (term.partition("=") for term in terms):
        query = query.where(DeviceRow.tags[key].as_string() == value)
    return query


def _matches(session: Session, target: str, enrolled: set[str]) -> set[str]:
    if target == "all":
        return enrolled
    if target.startswith("tag:"):
        return set(session.scalars(carrying(target.removeprefix("tag:").split(","))))
    return {target} & enrolled


def chosen(session: Session, choice: DeviceChoice, command: str) -> list[str]:
    """The devices `choice` names (`devices`, the targets of `to`, or every enrolled one with
    `all`), resolved; refused (422) unless exactly one of the three is given, saying how
    with `command` (`edgestack deploy`)."""
    given = [
        name
        for name, picked in (
            ("devices", choice.devices is not None),
            ("to", choice.to is not None),
            ("all", choice.all),
        )
        if picked
    ]
    if len(given) != 1:
        raise Unprocessable(
            f"name the devices in devices ({command} --device ID ...), give targets in to "
            f"(--to tag:key=value), or set all ({command} --all) for every enrolled device; "
            + (f"only one, not {' and '.join(given)}" if given else "none was given")
        )
    if choice.devices is not None:
        return resolve(session, choice.devices, "devices")
    if choice.to is not None:
        return resolve(session, choice.to, "to")
    return resolve(session, ["all"], "all")
