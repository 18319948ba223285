from typing import Annotated

from fastapi import APIRouter, Depends, Query

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    AuditedOperatorDep,
    SessionDep,
    ViewerDep,
    WindowDep,
    WriteSessionDep,
)
from edgestack.hub.store import alerts
from edgestack.protocol import AlertRule, AlertRules, AlertView, DeviceId

__all__ = ["router"]

router = APIRouter(tags=["alerts"])

RulesBody = Annotated[AlertRules, Depends(json_body(AlertRules))]


@router.get("/alerts", operation_id="alerts-list")
def list_alerts(
    _: ViewerDep,
    session: SessionDep,
    window: WindowDep,
    device: Annotated[DeviceId | None, Query(description="only this device's alerts")] = None,
    open_only: Annotated[
        bool, Query(alias="open", description="only the alerts not yet cleared")
    ] = False,
) -> list[AlertView]:
    """One page of alerts, oldest first (`order=newest` for newest first, paged with
    `before_id`): raised when a device's signal stayed past its rule's `raise_at`, cleared
    once it stayed past `clear_at`."""
    return alerts.listing(session, window, device_id=device, open_only=open_only)


@router.get("/alerts/rules", operation_id="alerts-rules")
def get_rules(_: ViewerDep, session: SessionDep) -> list[AlertRule]:
    """Every signal's alert rule, as set or by default."""
    return alerts.rules(session)


@router.put("/alerts/rules", operation_id="alerts-set-rules")
def set_rules(
    audit: AuditedOperatorDep, given: RulesBody, session: WriteSessionDep
) -> list[AlertRule]:
    """Set the rules of the signals named, each with `clear_at` on the safe side of
    `raise_at` (below it for a signal bad when high, above it for the accuracies); the others
    keep theirs. Answers every signal's rule."""
    before = alerts.rules(session)
    updated = alerts.set_rules(session, given)
    audit.changed(before, updated)
    session.commit()
    return updated
