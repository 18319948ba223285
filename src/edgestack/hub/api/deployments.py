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
    device when none are listed. Devices pick it up on their next long-poll."""
    deployment = deployments.deploy(session, request)
    session.commit()
    for device_id in deployment.devices:
        hub.notifier.notify(device_id)
    return deployment
