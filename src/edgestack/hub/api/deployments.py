from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import AuditedOperatorDep, HubDep, WriteSessionDep
from edgestack.hub.store import deployments, devices, rollouts
from edgestack.hub.store.targets import chosen
from edgestack.protocol import (
    BundleRef,
    DeployRequest,
    DeployResponse,
    DeviceChoice,
    UndeployResponse,
)

__all__ = ["router"]

router = APIRouter(tags=["deployments"])

DeployBody = Annotated[DeployRequest, Depends(json_body(DeployRequest))]
ChoiceBody = Annotated[DeviceChoice, Depends(json_body(DeviceChoice))]


@router.post("/deployments", operation_id="deployments-create")
def deploy(
    audit: AuditedOperatorDep, request: DeployBody, hub: HubDep, session: WriteSessionDep
) -> DeployResponse:
    """Point devices at a model version (the latest when none is given): the devices named
    in `devices`, or every enrolled device with `all`; a request with neither, or both, is
    refused with 422. Devices pick it up on their next long-poll.

    Unless `force` is set, each device is first checked: its reported sensors, rate and
    feature extractors against the bundle's input (a device that never reported them
    cannot be checked and is refused), and the bundle's measured footprint, when it has
    one, against the device's profile (`profile` in GET /api/v1/devices). If even one device
    fails, the whole request is refused with 409, naming each such device and why, and no
    desired state changes. 409, not 422: the request is well formed, it conflicts with the
    devices as they are, and succeeds once they or the bundle change, or with `force`.
    """
    before = _bundles(session, chosen(session, request, "edgestack deploy"))
    deployment = deployments.deploy(session, request)
    rollouts.refuse_held(session, deployment.devices)
    audit.changed(before, _bundles(session, deployment.devices))
    session.commit()
    hub.desired_changed(deployment.devices)
    return deployment


@router.post("/undeployments", operation_id="deployments-undeploy")
def undeploy(
    audit: AuditedOperatorDep, choice: ChoiceBody, hub: HubDep, session: WriteSessionDep
) -> UndeployResponse:
    """Have devices run no model: those named in `devices`, the targets of `to`, or every
    enrolled device with `all`. They keep sensing, collecting and reporting. Refused with 409
    while a rollout holds one of them, naming it."""
    before = _bundles(session, chosen(session, choice, "edgestack undeploy"))
    undone = deployments.undeploy(session, choice)
    rollouts.refuse_held(session, undone.devices)
    audit.changed(before, _bundles(session, undone.devices))
    session.commit()
    hub.desired_changed(undone.devices)
    return undone


def _bundles(session: Session, device_ids: list[str]) -> dict[str, BundleRef | None]:
    """The bundle each device's desired state names, for the audit log."""
    return {device_id: devices.desired(session, device_id).bundle for device_id in device_ids}
