from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import HubDep, WriteSessionDep, matches, refuse_protocol
from edgestack.hub.errors import Forbidden
from edgestack.hub.ratelimit import address, too_many
from edgestack.hub.store import devices, events
from edgestack.protocol import OLDEST_PROTOCOL, PROTOCOL, EnrolRequest, EnrolResponse

__all__ = ["router"]

router = APIRouter(tags=["enrolment"])

EnrolBody = Annotated[EnrolRequest, Depends(json_body(EnrolRequest))]


@router.post(
    "/enrol",
    operation_id="enrolment-enrol",
    responses={
        403: {"description": "the id is enrolled: send its device token, or approve"},
        429: {"description": "too many enrolments from this address: wait Retry-After"},
    },
)
def enrol(
    request: EnrolBody, hub: HubDep, session: WriteSessionDep, call: Request
) -> EnrolResponse:
    """Enrol a device with the fleet's enrolment token, and hand it a device token and the
    keys the hub signs bundles with, for the device to pin.

    An id not enrolled yet is enrolled. An enrolled id is enrolled again, its twin kept and
    its previous token revoked, only with that device token in `device_token` or after an
    operator's approval (`edgestack devices approve ID`); otherwise 403, and the id waits for
    approval. Each outcome is recorded as an event.

    Every enrolment asked for counts against its client address: past `enrol_attempts` in
    `enrol_window_s` (hub settings) the address is answered 429 with Retry-After.
    """
    if wait_s := hub.enrolments.take(address(call)):
        raise too_many("enrolments", hub.enrolments, wait_s)
    if not matches(request.enrol_token, hub.settings.enrol_token):
        raise HTTPException(
            401,
            "enrol_token is not this hub's enrolment token; use the value of "
            "EDGESTACK_ENROL_TOKEN set on the hub",
        )
    if not OLDEST_PROTOCOL <= request.protocol <= PROTOCOL:
        raise refuse_protocol("body.protocol", request.protocol)
    device_id = request.device_id
    row = devices.find(session, device_id)
    if row is None:
        token = devices.enrol(session, request)
        events.record(
            session,
            "device_enrolled",
            f"{device_id} enrolled",
            device_id=device_id,
            severity="info",
        )
    elif devices.holds_token(row, request.device_token) or row.reenrolment == "approved":
        how = "with its device token" if row.reenrolment != "approved" else "as approved"
        token = devices.enrol(session, request)
        events.record(
            session,
            "device_reenrolled",
            f"{device_id} enrolled again {how}; its previous token is revoked",
            device_id=device_id,
        )
    else:
        # Recorded once per wait: a device retrying until approved must not flood the events.
        if row.reenrolment != "waiting":
            row.reenrolment = "waiting"
            events.record(
                session,
                "reenrol_refused",
                f"an enrolment of {device_id} without its device token was refused; if it is "
                f"the device, approve it with `edgestack devices approve {device_id}`",
                device_id=device_id,
            )
            session.commit()
        raise Forbidden(
            f"device '{device_id}' is enrolled already; to enrol it again send its current "
            "device token as device_token, or have an operator approve it with "
            f"`edgestack devices approve {device_id}` (POST /api/v1/devices/{device_id}/approval)"
        )
    session.commit()
    for enrolled in hub.on_enrol:
        enrolled(device_id)
    hub.device_tokens.forget(device_id)
    return EnrolResponse(device_id=device_id, device_token=token, signing_keys=hub.keys.public())
