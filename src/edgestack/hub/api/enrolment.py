from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import HubDep, WriteSessionDep, matches
from edgestack.hub.errors import BadRequest
from edgestack.hub.store import devices
from edgestack.protocol import PROTOCOL, EnrolRequest, EnrolResponse

__all__ = ["router"]

router = APIRouter(tags=["enrolment"])

EnrolBody = Annotated[EnrolRequest, Depends(json_body(EnrolRequest))]


@router.post("/v1/enrol", operation_id="enrolment-enrol")
def enrol(request: EnrolBody, hub: HubDep, session: WriteSessionDep) -> EnrolResponse:
    """Enrol a device with the fleet's enrolment token, and hand it a device token and the
    keys the hub signs bundles with, for the device to pin.

    Enrolling an enrolled device again replaces its token and keeps its twin.
    """
    if not matches(request.enrol_token, hub.settings.enrol_token):
        raise HTTPException(
            401,
            "enrol_token is not this hub's enrolment token; use the value of "
            "EDGESTACK_ENROL_TOKEN set on the hub",
        )
    if request.protocol != PROTOCOL:
        raise BadRequest(
            f"protocol {request.protocol} is not spoken here; this hub speaks protocol "
            f"{PROTOCOL}: run an agent from the same edgestack release as the hub"
        )
    token = devices.enrol(session, request)
    session.commit()
    return EnrolResponse(
        device_id=request.device_id, device_token=token, signing_keys=hub.keys.public()
    )
