from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    Audit,
    AuditedOperatorDep,
    HubDep,
    SessionDep,
    ViewerDep,
    WindowDep,
    WriteSessionDep,
)
from edgestack.hub.api.paging import PagerDep
from edgestack.hub.context import HubContext
from edgestack.hub.store import rollouts
from edgestack.hub.store.tables import RolloutRow
from edgestack.protocol import INT64_MAX, RolloutRequest, RolloutState, RolloutView

__all__ = ["router"]

router = APIRouter(tags=["rollouts"])

RolloutBody = Annotated[RolloutRequest, Depends(json_body(RolloutRequest))]
RolloutId = Annotated[int, Path(ge=1, le=INT64_MAX, description="the rollout's id")]


@router.post("/rollouts", status_code=201, operation_id="rollouts-start")
def start_rollout(
    audit: AuditedOperatorDep, request: RolloutBody, hub: HubDep, session: WriteSessionDep
) -> RolloutView:
    """Start moving the devices of `to` onto a model version (the latest when none is
    given), wave by wave: each wave's devices first run it in shadow beside their bundle for
    `shadow_s`, then the wave's gate decides from what they reported. It holds: the wave runs
    the candidate and the next starts. It fails, or more than `abort_failures` of the wave's
    devices report the candidate failed: the wave goes back to its previous bundle and no
    further wave starts. Too little data: the wave waits, and is never promoted by waiting.

    Refused with 409 when a device is in another running rollout, or, unless `force`, when
    a device cannot run the candidate (as a deployment is checked); 422 for a drift_psi gate
    on a candidate without reference statistics."""
    row, changed = rollouts.start(session, request)
    session.flush()  # for its id
    audit.target = str(row.id)
    return _committed(hub, session, audit, None, row, changed)


@router.get("/rollouts", operation_id="rollouts-list")
def list_rollouts(
    _: ViewerDep,
    session: SessionDep,
    window: WindowDep,
    pager: PagerDep,
    state: Annotated[RolloutState | None, Query(description="only rollouts in this state")] = None,
) -> list[RolloutView]:
    """One page of rollouts, oldest first (`order=newest` for newest first)."""
    return pager.by_id(
        window, [rollouts.view(row) for row in rollouts.listing(session, window, state)]
    )


@router.get("/rollouts/{rollout_id}", operation_id="rollouts-get")
def get_rollout(_: ViewerDep, session: SessionDep, rollout_id: RolloutId) -> RolloutView:
    """A rollout with each wave's devices, state, gate readings and verdict."""
    return rollouts.view(rollouts.get(session, rollout_id))


@router.post("/rollouts/{rollout_id}/promote", operation_id="rollouts-promote")
def promote_rollout(
    audit: AuditedOperatorDep, hub: HubDep, session: WriteSessionDep, rollout_id: RolloutId
) -> RolloutView:
    """Promote the current wave now, whatever its gate reads; the next wave starts, or the
    rollout completes. 409 unless it is shadowing or held."""
    before = rollouts.view(rollouts.get(session, rollout_id))
    return _committed(hub, session, audit, before, *rollouts.promote(session, rollout_id))


@router.post("/rollouts/{rollout_id}/pause", operation_id="rollouts-pause")
def pause_rollout(
    audit: AuditedOperatorDep, hub: HubDep, session: WriteSessionDep, rollout_id: RolloutId
) -> RolloutView:
    """Stop judging the current wave; its devices stay in shadow. 409 unless it is
    shadowing or held."""
    before = rollouts.view(rollouts.get(session, rollout_id))
    return _committed(hub, session, audit, before, rollouts.pause(session, rollout_id), [])


@router.post("/rollouts/{rollout_id}/resume", operation_id="rollouts-resume")
def resume_rollout(
    audit: AuditedOperatorDep, hub: HubDep, session: WriteSessionDep, rollout_id: RolloutId
) -> RolloutView:
    """Judge the paused wave again. 409 unless it is paused."""
    before = rollouts.view(rollouts.get(session, rollout_id))
    return _committed(hub, session, audit, before, rollouts.resume(session, rollout_id), [])


@router.post("/rollouts/{rollout_id}/abort", operation_id="rollouts-abort")
def abort_rollout(
    audit: AuditedOperatorDep, hub: HubDep, session: WriteSessionDep, rollout_id: RolloutId
) -> RolloutView:
    """Stop the rollout and put every device it moved, or runs it in shadow, back on its
    previous bundle. 409 once it has ended."""
    before = rollouts.view(rollouts.get(session, rollout_id))
    return _committed(hub, session, audit, before, *rollouts.abort(session, rollout_id))


@router.post("/rollouts/{rollout_id}/rollback", operation_id="rollouts-rollback")
def rollback_rollout(
    audit: AuditedOperatorDep, hub: HubDep, session: WriteSessionDep, rollout_id: RolloutId
) -> RolloutView:
    """Put every device the rollout moved back on its previous bundle, while it runs or
    after it completed. 409 when no device is left to move back."""
    before = rollouts.view(rollouts.get(session, rollout_id))
    return _committed(hub, session, audit, before, *rollouts.rollback(session, rollout_id))


def _committed(
    hub: HubContext,
    session: Session,
    audit: Audit,
    before: RolloutView | None,
    row: RolloutRow,
    changed: list[str],
) -> RolloutView:
    view = rollouts.view(row)
    audit.changed(before, view)
    session.commit()
    hub.desired_changed(changed)
    return view
