"""Policies the hub follows on its own, and their runs."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    AuditedOperatorDep,
    HubDep,
    SessionDep,
    ViewerDep,
    WindowDep,
    WriteSessionDep,
)
from edgestack.hub.api.paging import KeysDep, PagerDep
from edgestack.hub.store import policies
from edgestack.protocol import PolicyName, PolicyRunView, PolicyTrigger, PolicyView, RetrainPolicy

__all__ = ["router"]

router = APIRouter(tags=["policies"])

PolicyBody = Annotated[RetrainPolicy, Depends(json_body(RetrainPolicy))]
TriggerBody = Annotated[PolicyTrigger, Depends(json_body(PolicyTrigger))]
NameParam = Annotated[PolicyName, Path(description="the policy")]


@router.get("/policies", operation_id="policies-list")
def list_policies(
    _: ViewerDep, session: SessionDep, pager: PagerDep, keys: KeysDep
) -> list[PolicyView]:
    """One page of the policies, by name."""
    return pager.by_key(keys, policies.listing(session), lambda view: view.name)


@router.put("/policies/{name}", operation_id="policies-put")
def put_policy(
    audit: AuditedOperatorDep, name: NameParam, policy: PolicyBody, session: WriteSessionDep
) -> PolicyView:
    """Set a policy. `retrain-on-drift` runs when a drift alert is raised on devices, or when
    started for devices with POST /api/v1/policies/{name}/runs."""
    before = next((p for p in policies.listing(session) if p.name == name), None)
    view = policies.put(session, name, policy)
    audit.changed(before, view)
    session.commit()
    return view


@router.get("/policies/{name}", operation_id="policies-get")
def get_policy(_: ViewerDep, name: NameParam, session: SessionDep) -> PolicyView:
    return policies.get(session, name)


@router.delete("/policies/{name}", status_code=204, operation_id="policies-delete")
def delete_policy(audit: AuditedOperatorDep, name: NameParam, session: WriteSessionDep) -> Response:
    """Remove a policy; a run of it in progress is failed, and its jobs left to finish."""
    audit.changed(policies.get(session, name), None)
    policies.remove(session, name)
    session.commit()
    return Response(status_code=204)


@router.post("/policies/{name}/runs", status_code=201, operation_id="policies-trigger")
def trigger_policy(
    audit: AuditedOperatorDep,
    name: NameParam,
    trigger: TriggerBody,
    hub: HubDep,
    session: WriteSessionDep,
) -> PolicyRunView:
    """Start a run for these devices now: each is asked for its least confident recent
    windows. 409 while a run of the policy is in progress."""
    run = policies.trigger(session, name, trigger)
    audit.changed(None, run)
    session.commit()
    hub.desired_changed(run.devices)
    return run


@router.get("/policy-runs", operation_id="policies-runs")
def list_runs(
    _: ViewerDep, session: SessionDep, window: WindowDep, pager: PagerDep
) -> list[PolicyRunView]:
    """One page of policy runs, oldest first (`order=newest` for newest first)."""
    return pager.by_id(window, policies.runs(session, window))
