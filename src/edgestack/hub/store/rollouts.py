"""Rollouts and their state machine: a model version moves onto devices wave by wave, each
wave first running it in shadow beside the bundle it has, until the wave's gate decides.

    shadowing --gate holds--> next wave shadowing ... --last wave holds--> completed
        |  \\--gate lacks data--> held (waits; only data, an operator's promote or abort move it)
        \\--gate fails, or too many devices failed--> rolled_back (the wave goes back)
    shadowing/held <--> paused;  any of them --abort--> aborted (every touched device back)

All of a rollout's state is in its row, and `advance` moves every running rollout one step
in the caller's transaction, so a hub started again resumes each where it was. Each function
returns the devices whose desired state changed, for the caller to wake after committing.
"""

import itertools
import math
from datetime import datetime, timedelta
from typing import Literal

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.bundle import Manifest
from edgestack.hub.errors import Conflict, NotFound, Unprocessable
from edgestack.hub.store import deployments, devices, events, gates, targets
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import RolloutRow
from edgestack.protocol import (
    BundleRef,
    HubEventKind,
    RolloutRequest,
    RolloutState,
    RolloutView,
    WaveView,
)

__all__ = [
    "ACTIVE",
    "abort",
    "advance",
    "get",
    "holding",
    "listing",
    "pause",
    "promote",
    "refuse_held",
    "resume",
    "rollback",
    "start",
    "view",
]

ACTIVE: frozenset[RolloutState] = frozenset({"shadowing", "held", "paused"})
"""The states of a rollout that holds its devices: no deployment or other rollout may
touch them."""

_RUNNING = ("shadowing", "held")
_TOUCHED = frozenset({"shadowing", "held", "promoted"})

Changed = list[str]
_STATE: TypeAdapter[RolloutState] = TypeAdapter(RolloutState)


def start(session: Session, request: RolloutRequest) -> tuple[RolloutRow, Changed]:
    """Check and begin a rollout: resolve its targets, refuse (409) devices another rollout
    holds or, unless forced, that cannot run the candidate, split them into waves, and start
    the first wave's shadow."""
    chosen = targets.resolve(session, request.to, "to")
    manifest, ref = deployments.manifest_of(session, request.model, request.version)
    if request.gate.drift_psi is not None and manifest.reference is None:
        raise Unprocessable(
            f"gate.drift_psi: model '{ref.name}' version {ref.version} carries no reference "
            "statistics to measure drift against; drop the drift_psi term, or roll out a "
            "version trained by this release (its manifest has a reference)"
        )
    refuse_held(session, chosen)
    previous = {device_id: devices.desired(session, device_id).bundle for device_id in chosen}
    _refuse_unshadowable(session, manifest, ref, previous)
    if not request.force:
        deployments.refuse_misfits(
            session, manifest, ref, chosen, "edgestack rollout start --force"
        )
    row = RolloutRow(
        name=ref.name,
        version=ref.version,
        digest=ref.digest,
        state="shadowing",
        request=request.model_dump(mode="json"),
        wave=0,
        waves=[
            WaveView(devices=wave, state="waiting").model_dump(mode="json")
            for wave in _split(chosen, request.waves)
        ],
        previous={device_id: _dump(bundle) for device_id, bundle in previous.items()},
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    _event(
        session,
        row,
        "rollout_started",
        f"to {len(chosen)} devices in {len(row.waves)} waves, "
        f"{request.shadow_s:g} s in shadow each, gate {str(request.gate) or 'none'}",
    )
    return row, _start_wave(session, row, 0)


def get(session: Session, rollout_id: int) -> RolloutRow:
    row = session.get(RolloutRow, rollout_id)
    if row is None:
        raise NotFound(f"no rollout {rollout_id}; list them with GET /api/v1/rollouts")
    return row


def listing(
    session: Session, window: Window, state: RolloutState | None = None
) -> list[RolloutRow]:
    query = select(RolloutRow)
    if state is not None:
        query = query.where(RolloutRow.state == state)
    return list(session.scalars(window.apply(query, RolloutRow.id)))


def view(row: RolloutRow) -> RolloutView:
    return RolloutView(
        id=row.id,
        candidate=_candidate(row),
        state=_STATE.validate_python(row.state),
        request=RolloutRequest.model_validate(row.request),
        wave=row.wave,
        waves=_waves(row),
        previous={
            device_id: None if ref is None else BundleRef.model_validate(ref)
            for device_id, ref in row.previous.items()
        },
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def holding(session: Session, device_ids: list[str]) -> RolloutRow | None:
    """The running rollout that holds any of `device_ids`, if one does."""
    wanted = set(device_ids)
    for row in session.scalars(select(RolloutRow).where(RolloutRow.state.in_(ACTIVE))):
        if wanted & set(row.previous):
            return row
    return None


def refuse_held(session: Session, device_ids: list[str]) -> None:
    """Refuse (409) if a running rollout holds any of `device_ids`, naming it."""
    row = holding(session, device_ids)
    if row is not None:
        held = sorted(set(device_ids) & set(row.previous))
        raise Conflict(
            f"devices {', '.join(held[:20])} are in rollout {row.id} ({row.name} "
            f"v{row.version}, {row.state}); wait until it ends, or abort it "
            f"(edgestack rollout abort {row.id}), then try again"
        )


def advance(session: Session, now: datetime | None = None) -> Changed:
    """Move every shadowing or held rollout one step: roll its wave back when too many of
    the wave's devices failed, and once the wave has been in shadow `shadow_s`, judge its
    gate. The controller calls it about every second."""
    now = now or utcnow()
    changed: Changed = []
    for row in session.scalars(select(RolloutRow).where(RolloutRow.state.in_(_RUNNING))):
        changed += _advance(session, row, now)
    return changed


def promote(session: Session, rollout_id: int) -> tuple[RolloutRow, Changed]:
    """Promote the current wave now, whatever its gate reads: an operator's call."""
    row = _in(get(session, rollout_id), _RUNNING, "promote")
    return row, _promote_wave(session, row, "promoted by an operator")


def pause(session: Session, rollout_id: int) -> RolloutRow:
    """Stop judging the current wave until `resume`; its devices stay in shadow."""
    row = _in(get(session, rollout_id), _RUNNING, "pause")
    row.state = "paused"
    _event(session, row, "rollout_paused", f"paused at wave {row.wave + 1} of {len(row.waves)}")
    return row


def resume(session: Session, rollout_id: int) -> RolloutRow:
    """Judge the current wave again, where it was when paused."""
    row = _in(get(session, rollout_id), ("paused",), "resume")
    row.state = _waves(row)[row.wave].state
    _event(session, row, "rollout_resumed", f"resumed at wave {row.wave + 1} of {len(row.waves)}")
    return row


def abort(session: Session, rollout_id: int) -> tuple[RolloutRow, Changed]:
    """Stop the rollout and put every device it touched back on its previous bundle."""
    row = _in(get(session, rollout_id), tuple(ACTIVE), "abort")
    changed = _roll_back(session, row, range(len(row.waves)), "aborted by an operator")
    _finish(row, "aborted")
    _event(session, row, "rollout_aborted", f"aborted; {len(changed)} devices back")
    return row, changed


def rollback(session: Session, rollout_id: int) -> tuple[RolloutRow, Changed]:
    """Put every device the rollout moved back on its previous bundle, while it runs or after
    it completed; refused (409) when none is left to move back."""
    row = get(session, rollout_id)
    if not any(wave.state in _TOUCHED for wave in _waves(row)):
        raise Conflict(
            f"rollout {row.id} is {row.state} and no device runs its candidate: nothing to "
            "roll back"
        )
    changed = _roll_back(session, row, range(len(row.waves)), "rolled back by an operator")
    _finish(row, "rolled_back")
    message = f"rolled back by an operator: {len(changed)} devices back on their previous bundle"
    _event(session, row, "rollout_rolled_back", message)
    return row, changed


# -- steps -------------------------------------------------------------------


def _advance(session: Session, row: RolloutRow, now: datetime) -> Changed:
    request = RolloutRequest.model_validate(row.request)
    waves = _waves(row)
    wave = waves[row.wave]
    assert wave.started_at is not None
    manifest, _ = deployments.manifest_of(session, row.name, row.version)
    readings = gates.read(
        session,
        wave.devices,
        row.digest,
        wave.started_at,
        request.min_windows,
        manifest.reference,
    )
    if readings != wave.readings:
        wave.readings = readings
        _save(row, waves)
    if len(readings.failed) > request.abort_failures * len(wave.devices):
        why = f"the candidate failed on {', '.join(readings.failed)}"
        return _fail_wave(session, row, why)
    if now < wave.started_at + timedelta(seconds=request.shadow_s):
        return []
    verdict, why = gates.judge(request.gate, readings)
    if verdict == "holds":
        return _promote_wave(session, row, f"gate held: {why}")
    if verdict == "fails":
        return _fail_wave(session, row, f"gate failed: {why}")
    if wave.state != "held":
        wave.state, wave.verdict = "held", why
        _save(row, waves)
        row.state = "held"
        _event(session, row, "rollout_wave_held", f"wave {row.wave + 1} held: {why}")
    return []


def _start_wave(session: Session, row: RolloutRow, index: int) -> Changed:
    waves = _waves(row)
    wave = waves[index]
    wave.state, wave.started_at = "shadowing", utcnow()
    candidate = _candidate(row)
    for device_id in wave.devices:
        devices.steer(session, device_id, shadow=candidate, keep=_keep(row, device_id))
    row.wave, row.state = index, "shadowing"
    _save(row, waves)
    _event(
        session,
        row,
        "rollout_wave_started",
        f"wave {index + 1} of {len(waves)} in shadow on {', '.join(wave.devices)}",
    )
    return list(wave.devices)


def _promote_wave(session: Session, row: RolloutRow, why: str) -> Changed:
    waves = _waves(row)
    wave = waves[row.wave]
    wave.state, wave.verdict = "promoted", why
    last = row.wave == len(waves) - 1
    candidate = _candidate(row)
    for device_id in wave.devices:
        keep = [] if last else _keep(row, device_id)
        devices.steer(session, device_id, bundle=candidate, shadow=None, keep=keep)
    _save(row, waves)
    _event(session, row, "rollout_wave_promoted", f"wave {row.wave + 1} promoted: {why}")
    if not last:
        return wave.devices + _start_wave(session, row, row.wave + 1)
    # Committed: the devices of the earlier waves need no longer keep what they ran before.
    earlier = [d for w in waves[:-1] for d in w.devices]
    for device_id in earlier:
        devices.steer(session, device_id, keep=[])
    _finish(row, "completed")
    _event(session, row, "rollout_completed", f"every wave promoted: committed, {why}")
    return wave.devices + earlier


def _fail_wave(session: Session, row: RolloutRow, why: str) -> Changed:
    changed = _roll_back(session, row, [row.wave], why)
    _finish(row, "rolled_back")
    _event(
        session,
        row,
        "rollout_rolled_back",
        f"wave {row.wave + 1} rolled back, no further wave: {why}",
        severity="warning",
    )
    return changed


def _roll_back(session: Session, row: RolloutRow, indices: range | list[int], why: str) -> Changed:
    """Put the devices of the touched waves among `indices` back on their previous bundle."""
    waves = _waves(row)
    changed = []
    for index in indices:
        wave = waves[index]
        if wave.state not in _TOUCHED:
            continue
        wave.state, wave.verdict = "rolled_back", why
        for device_id in wave.devices:
            devices.steer(
                session, device_id, bundle=_previous(row, device_id), shadow=None, keep=[]
            )
            changed.append(device_id)
    _save(row, waves)
    return changed


# -- helpers -----------------------------------------------------------------


def _refuse_unshadowable(
    session: Session, manifest: Manifest, ref: BundleRef, previous: dict[str, BundleRef | None]
) -> None:
    """Refuse (409) devices on which the candidate cannot run in shadow: a shadow is compared
    with the model a device runs, on the same windows, so it needs one of the same input."""
    inputs: dict[str, bool] = {}
    why = []
    for device_id, bundle in previous.items():
        if bundle is None:
            why.append(f"{device_id} runs no model to compare it with")
            continue
        if bundle.digest not in inputs:
            running, _ = deployments.manifest_of(session, bundle.name, bundle.version)
            inputs[bundle.digest] = running.input == manifest.input
        if not inputs[bundle.digest]:
            why.append(f"{device_id} runs {bundle.name} v{bundle.version} of another input spec")
    if why:
        raise Conflict(
            f"model '{ref.name}' version {ref.version} cannot run in shadow on "
            f"{len(why)} of {len(previous)} devices: {'; '.join(why[:20])}; a shadow runs on "
            "the windows of the model a device runs: deploy to these devices instead "
            "(edgestack deploy), or leave them out of the rollout"
        )


def _split(chosen: list[str], shares: list[float]) -> list[list[str]]:
    """The sorted devices cut at each cumulative share; a wave left empty is dropped."""
    cuts = [0, *(min(len(chosen), math.ceil(share * len(chosen) - 1e-9)) for share in shares)]
    return [chosen[a:b] for a, b in itertools.pairwise(cuts) if b > a]


def _in(row: RolloutRow, states: tuple[str, ...], action: str) -> RolloutRow:
    if row.state not in states:
        raise Conflict(
            f"rollout {row.id} is {row.state}; only a rollout {' or '.join(sorted(states))} "
            f"can {action}"
        )
    return row


def _finish(row: RolloutRow, state: RolloutState) -> None:
    row.state = state
    row.finished_at = utcnow()


def _event(
    session: Session,
    row: RolloutRow,
    kind: HubEventKind,
    message: str,
    *,
    severity: Literal["info", "warning", "critical"] = "info",
) -> None:
    events.record(
        session,
        kind,
        f"rollout {row.id} ({row.name} v{row.version}): {message}",
        severity=severity,
        bundle_digest=row.digest,
    )


def _candidate(row: RolloutRow) -> BundleRef:
    return BundleRef(name=row.name, version=row.version, digest=row.digest)


def _previous(row: RolloutRow, device_id: str) -> BundleRef | None:
    ref = row.previous.get(device_id)
    return None if ref is None else BundleRef.model_validate(ref)


def _keep(row: RolloutRow, device_id: str) -> list[BundleRef]:
    previous = _previous(row, device_id)
    return [] if previous is None else [previous]


def _waves(row: RolloutRow) -> list[WaveView]:
    return [WaveView.model_validate(wave) for wave in row.waves]


def _save(row: RolloutRow, waves: list[WaveView]) -> None:
    # A JSON column is written when it is given a new value, not when its value is changed.
    row.waves = [wave.model_dump(mode="json") for wave in waves]


def _dump(ref: BundleRef | None) -> dict[str, object] | None:
    return None if ref is None else ref.model_dump(mode="json")
