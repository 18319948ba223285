"""Curating a dataset: relabelling or removing the samples a selection takes. The route
freezes the dataset's next version right after each change, so every version before it keeps
the samples as they were, and the change is named by the version it made."""

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from edgestack.hub.errors import Conflict, Unprocessable
from edgestack.hub.store import datasets
from edgestack.hub.store.tables import SampleRow
from edgestack.protocol import Relabel, SampleSelection

__all__ = ["relabel", "remove"]

_SELECTORS = ("device", "since", "until", "label", "ids", "spec")


def relabel(session: Session, name: str, change: Relabel) -> tuple[str, int]:
    """Give the samples of `name` that `change` selects, and that carry another label, the
    label `change.to`; their input spec, and how many they are."""
    where = [*_where(session, name, change), SampleRow.label != change.to]
    spec, matched = _matched(session, name, change, where, f" not labelled '{change.to}'")
    session.execute(
        update(SampleRow).where(*where).values(label=change.to), execution_options=_BULK
    )
    return spec, matched


def remove(session: Session, name: str, selection: SampleSelection) -> tuple[str, int]:
    """Remove the samples of `name` that `selection` selects; refused (409) when none of
    their input spec would be left, since a version holds some. Their input spec, and how
    many they were."""
    where = _where(session, name, selection)
    spec, matched = _matched(session, name, selection, where, "")
    held = session.scalar(
        select(func.count()).where(SampleRow.dataset == name, SampleRow.spec == spec)
    )
    if held == matched:
        raise Conflict(
            f"removing the {matched} samples selected ({_described(selection)}) would leave "
            f"dataset '{name}' no samples of spec {spec}, and a version holds at least one; "
            "select fewer"
        )
    session.execute(delete(SampleRow).where(*where), execution_options=_BULK)
    return spec, matched


# The rows changed are not loaded in the session, so it has none to keep in step.
_BULK = {"synchronize_session": False}


def _where(session: Session, name: str, selection: SampleSelection) -> list[ColumnElement[bool]]:
    """The conditions `selection` puts on the samples of `name`; refused (422) when it
    selects nothing, or names samples of other datasets."""
    if all(getattr(selection, field) is None for field in _SELECTORS):
        raise Unprocessable(
            f"body: select the samples with at least one of {', '.join(_SELECTORS)}; a change "
            "to every sample of a dataset is not taken"
        )
    if selection.since and selection.until and selection.since >= selection.until:
        raise Unprocessable(
            f"body.until: {selection.until.isoformat()} is not after since "
            f"({selection.since.isoformat()}); give a time range that ends after it starts"
        )
    where = [SampleRow.dataset == name]
    if selection.device is not None:
        where.append(SampleRow.device_id == selection.device)
    if selection.since is not None:
        where.append(SampleRow.at >= selection.since)
    if selection.until is not None:
        where.append(SampleRow.at < selection.until)
    if selection.label is not None:
        where.append(SampleRow.label == selection.label)
    if selection.spec is not None:
        where.append(SampleRow.spec == selection.spec)
    if selection.ids is not None:
        ids = set(selection.ids)
        found = set(session.scalars(select(SampleRow.id).where(where[0], SampleRow.id.in_(ids))))
        missing = sorted(ids - found)
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            raise Unprocessable(
                f"body.ids: {len(missing)} are no samples of dataset '{name}' ({shown}); "
                "give ids GET /api/v1/samples lists for it"
            )
        where.append(SampleRow.id.in_(ids))
    return where


def _matched(
    session: Session,
    name: str,
    selection: SampleSelection,
    where: list[ColumnElement[bool]],
    also: str,
) -> tuple[str, int]:
    """The one input spec of the samples `where` takes, and how many they are; refused when
    they are none (404 for a dataset without samples, else 422) or of several specs (409)."""
    query = select(SampleRow.spec, func.count()).where(*where).group_by(SampleRow.spec)
    per_spec: dict[str, int] = {spec: n for spec, n in session.execute(query)}
    if not per_spec:
        datasets.detail(session, name)  # raises when the dataset holds no samples at all
        raise Unprocessable(
            f"body: no samples of dataset '{name}'{also} match the selection "
            f"({_described(selection)}); nothing was changed, and no version frozen"
        )
    if len(per_spec) > 1:
        raise Conflict(
            f"the samples selected ({_described(selection)}) are of {len(per_spec)} input specs "
            f"({', '.join(sorted(per_spec))}) and a version holds one; choose one with spec"
        )
    ((spec, matched),) = per_spec.items()
    return spec, matched


def _described(selection: SampleSelection) -> str:
    given = selection.model_dump(mode="json", include=set(_SELECTORS), exclude_none=True)
    if "ids" in given:
        given["ids"] = f"{len(given['ids'])} ids"
    return ", ".join(f"{key} {value}" for key, value in given.items())
