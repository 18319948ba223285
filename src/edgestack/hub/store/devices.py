"""Devices and their twins: enrolment, tokens, desired and reported state, views."""

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from edgestack.hub.errors import Conflict, NotFound, Unprocessable
from edgestack.hub.store import accounts, targets
from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import DeviceRow, Json
from edgestack.profiles import PROFILES, DeviceProfile, profile_for
from edgestack.protocol import (
    MAX_TAGS,
    BundleRef,
    Collection,
    DesiredPatch,
    DesiredState,
    DeviceStatus,
    DeviceView,
    EnrolRequest,
    Hardware,
    ReportedState,
    TagsPatch,
    TelemetryTotals,
)

__all__ = [
    "approve",
    "deploy",
    "desired",
    "device_for_token",
    "enrol",
    "find",
    "get",
    "hash_token",
    "holds_token",
    "may_collect",
    "not_enrolled",
    "profile",
    "report",
    "report_many",
    "seen_many",
    "steer",
    "tag",
    "token_hashes",
    "update_desired",
    "view",
    "views",
]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def not_enrolled(device_id: str) -> NotFound:
    return NotFound(f"device '{device_id}' is not enrolled; enrol it with POST /api/v1/enrol")


def find(session: Session, device_id: str) -> DeviceRow | None:
    return session.get(DeviceRow, device_id)


def enrolled(session: Session, device_ids: Iterable[str]) -> set[str]:
    """Those of `device_ids` that are enrolled."""
    return set(
        session.scalars(select(DeviceRow.device_id).where(DeviceRow.device_id.in_(device_ids)))
    )


def get(session: Session, device_id: str) -> DeviceRow:
    row = session.get(DeviceRow, device_id)
    if row is None:
        raise not_enrolled(device_id)
    return row


def enrol(session: Session, request: EnrolRequest) -> str:
    """Enrol a device, or give an enrolled one a fresh token; return the new token.

    Enrolling again keeps the twin and the totals: a device that lost its token, or whose
    disk was wiped, picks up where the fleet left it. Whether it may is the caller's call
    (`holds_token`, an approval); this revokes the previous token and uses up an approval.
    """
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = session.get(DeviceRow, request.device_id)
    if row is None:
        row = DeviceRow(
            device_id=request.device_id,
            enrolled_at=now,
            desired=_dump_desired(DesiredState()),
            desired_version=0,
            reported=None,
            telemetry=TelemetryTotals().model_dump(mode="json"),
            tags={},
        )
        session.add(row)
    row.token_sha256 = hash_token(token)
    row.broker_hash = accounts.hash_password(token)
    row.hardware = request.hardware.model_dump(mode="json")
    row.last_seen = now
    row.reenrolment = None
    session.flush()  # events about it refer to it, and no relationship tells the ORM so
    return token


def holds_token(row: DeviceRow, token: str | None) -> bool:
    """Whether `token` is the device's current token, compared in constant time."""
    return token is not None and hmac.compare_digest(hash_token(token), row.token_sha256)


def approve(session: Session, device_id: str) -> DeviceView:
    """Let the next enrolment of `device_id` through without its token, once. Only an id
    whose enrolment was refused may be approved: a standing approval would hand the id to
    whoever holds the enrolment token next."""
    row = get(session, device_id)
    if row.reenrolment != "waiting":
        raise Conflict(
            f"device '{device_id}' is not waiting for approval: no enrolment of it without its "
            "device token was refused since it last enrolled; start its agent, then approve "
            "it once `edgestack devices` shows 're-enrolment waiting'"
        )
    row.reenrolment = "approved"
    return _view(row)


def token_hashes(session: Session, device_ids: Sequence[str]) -> list[str | None]:
    """The hash of each device's token, in order; None for an id not enrolled."""
    found = session.execute(
        select(DeviceRow.device_id, DeviceRow.token_sha256).where(
            DeviceRow.device_id.in_(set(device_ids))
        )
    )
    hashes = {device_id: token_sha256 for device_id, token_sha256 in found}
    return [hashes.get(device_id) for device_id in device_ids]


def device_for_token(session: Session, token_sha256: str) -> str | None:
    return session.scalar(
        select(DeviceRow.device_id).where(DeviceRow.token_sha256 == token_sha256).limit(1)
    )


def seen_many(session: Session, device_ids: Sequence[str]) -> list[DesiredState]:
    """Mark each of `device_ids` seen now; the desired state of each, in order."""
    wanted = set(device_ids)
    session.execute(
        update(DeviceRow).where(DeviceRow.device_id.in_(wanted)).values(last_seen=utcnow())
    )
    found = session.execute(
        select(DeviceRow.device_id, DeviceRow.desired, DeviceRow.desired_version).where(
            DeviceRow.device_id.in_(wanted)
        )
    )
    states = {device_id: _state(state, version) for device_id, state, version in found}
    if missing := wanted - states.keys():
        raise not_enrolled(min(missing))
    return [states[device_id] for device_id in device_ids]


def desired(session: Session, device_id: str) -> DesiredState:
    return _desired(get(session, device_id))


def update_desired(session: Session, device_id: str, patch: DesiredPatch) -> DesiredState:
    """Apply the fields the patch was given; a field given as null goes back to its default."""
    if patch.profile is not None and patch.profile not in PROFILES:
        raise Unprocessable(
            f"profile: '{patch.profile}' is no device profile; choose one of "
            f"{', '.join(PROFILES)} (GET /api/v1/profiles), or null for the one the device's "
            "hardware puts it in"
        )
    row = get(session, device_id)
    changes = {
        field: getattr(patch, field)
        if getattr(patch, field) is not None
        else DesiredState.model_fields[field].get_default(call_default_factory=True)
        for field in patch.model_fields_set
    }
    before = _desired(row)
    state = DesiredState.model_validate(before.model_copy(update=changes).model_dump())
    if before.collect is not None and state.collect != before.collect:
        row.previous_collect = before.collect.model_dump(mode="json")
    return _store_desired(row, state)


def may_collect(session: Session, device_id: str) -> list[Collection]:
    """The collections a device may send samples of: the one its desired state asks for, and
    the one before it, whose last samples the device sends after the change reached it."""
    row = get(session, device_id)
    current = _desired(row).collect
    previous = row.previous_collect
    return [
        *([current] if current else []),
        *([Collection.model_validate(previous)] if previous else []),
    ]


def deploy(session: Session, device_ids: Iterable[str], ref: BundleRef) -> None:
    for device_id in device_ids:
        steer(session, device_id, bundle=ref)


def steer(session: Session, device_id: str, **fields: object) -> DesiredState:
    """Store the device's desired state with `fields` (`bundle`, `shadow`, `keep`, ...)
    changed, as its next version."""
    row = get(session, device_id)
    state = DesiredState.model_validate({**_desired(row).model_dump(), **fields})
    return _store_desired(row, state)


def tag(session: Session, device_id: str, patch: TagsPatch) -> DeviceView:
    """Give the device the patch's tags and take away the keys it names to remove; a key in
    both, or more than `MAX_TAGS` tags in the end, is refused and nothing changes."""
    both = sorted(set(patch.tags) & set(patch.remove))
    if both:
        raise Unprocessable(
            f"remove: {', '.join(both)} also set in tags; set a key or remove it, not both"
        )
    row = get(session, device_id)
    tags = {k: v for k, v in (row.tags or {}).items() if k not in patch.remove} | patch.tags
    if len(tags) > MAX_TAGS:
        raise Unprocessable(
            f"tags: device '{device_id}' would carry {len(tags)} tags, at most {MAX_TAGS} are "
            "allowed; remove some (remove: [key]) before adding more"
        )
    row.tags = dict(sorted(tags.items()))
    return _view(row)


def profile(row: DeviceRow) -> DeviceProfile:
    """The profile deployments to the device are checked against: the one its desired state
    names, else the one its hardware puts it in, as last reported or else as at enrolment."""
    name = _desired(row).profile
    # A name this hub no longer knows (a profile dropped since) falls back to the hardware's.
    if name in PROFILES:
        return PROFILES[name]
    hardware = row.hardware if row.reported is None else row.reported["hardware"]
    return profile_for(Hardware.model_validate(hardware))


def report(session: Session, device_id: str, reported: ReportedState) -> ReportedState:
    return report_many(session, [(device_id, reported)])[0]


def report_many(
    session: Session, reported: Sequence[tuple[str, ReportedState]]
) -> list[ReportedState]:
    """Store each device's reported state of `reported` (device id, state), the last one
    given for a device the one that stays; the states, in order."""
    latest = dict(reported)
    if missing := latest.keys() - enrolled(session, latest):
        raise not_enrolled(min(missing))
    now = utcnow()
    session.execute(
        update(DeviceRow),
        [
            {"device_id": device_id, "reported": state.model_dump(mode="json"), "last_seen": now}
            for device_id, state in latest.items()
        ],
    )
    return [state for _, state in reported]


def view(session: Session, device_id: str) -> DeviceView:
    return _view(get(session, device_id))


def views(
    session: Session,
    *,
    tags: Sequence[str] = (),
    status: DeviceStatus | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[DeviceView]:
    """The enrolled devices by id, at most `limit` of those after the id `after`; only those
    carrying every `key=value` of `tags` and reporting `status`, when given (a device that
    never reported has no status)."""
    query = select(DeviceRow).order_by(DeviceRow.device_id).limit(limit)
    if tags:
        query = query.where(DeviceRow.device_id.in_(targets.carrying(tags)))
    if status is not None:
        query = query.where(DeviceRow.reported["status"].as_string() == status)
    if after is not None:
        query = query.where(DeviceRow.device_id > after)
    return [_view(row) for row in session.scalars(query)]


def _desired(row: DeviceRow) -> DesiredState:
    return _state(row.desired, row.desired_version)


def _state(desired: Json, version: int) -> DesiredState:
    """The desired state a row's `desired` and `desired_version` columns hold."""
    return DesiredState.model_validate({**desired, "version": version})


def _dump_desired(state: DesiredState) -> dict[str, object]:
    return state.model_dump(mode="json", exclude={"version"})


def _store_desired(row: DeviceRow, state: DesiredState) -> DesiredState:
    """Store `state` as the next version of the row's desired state."""
    row.desired = _dump_desired(state)
    row.desired_version += 1
    return state.model_copy(update={"version": row.desired_version})


def _view(row: DeviceRow) -> DeviceView:
    return DeviceView(
        device_id=row.device_id,
        enrolled_at=row.enrolled_at,
        last_seen=row.last_seen,
        desired=_desired(row),
        reported=None if row.reported is None else ReportedState.model_validate(row.reported),
        telemetry=TelemetryTotals.model_validate(row.telemetry),
        profile=profile(row).name,
        reenrolment=row.reenrolment,
        tags=row.tags or {},
    )
