from typing import Annotated

from fastapi import APIRouter, Depends

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import AdminDep, HubDep, WriteSessionDep
from edgestack.hub.store import deployments
from edgestack.protocol import DeployRequest, DeployResponse

__all__ = ["router"]

router = APIRouter(tags=["deployments"])

DeployBody = Annotated[DeployRequest, Depends(json_body(DeployRequest))]


@router.post("/v1/deployments", operation_id="deployments-create")
def deploy(
    _: AdminDep, request: DeployBody, hub: HubDep, session: WriteSessionDep
) -> DeployResponse:
    """Point devices at a model version: the latest when none is given, every enrolled
    device when none are listed. Devices pick it up on their next long-poll.

    The bundle's measured footprint is checked against each device's profile (`profile` in
    GET /v1/devices); if it does not fit even one, the whole request is refused with 409,
    naming each such device, its profile and why, and no desired state changes. 409, not
    422: the request is well formed, it conflicts with the devices as they are, and it
    succeeds once their profile or the bundle changes, or with `force`. A bundle without a
    footprint has not been measured, so there is nothing to check it against: it deploys.
    """
    deployment = deployments.deploy(session, request)
    session.commit()
    for device_id in deployment.devices:
        hub.notifier.notify(device_id)
    return deployment
