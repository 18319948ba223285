from typing import Annotated

from fastapi import APIRouter, Path

from edgestack.hub.api.deps import AdminDep, SessionDep, WriteSessionDep
from edgestack.hub.store import devices
from edgestack.protocol import DeviceId, DeviceView

__all__ = ["router"]

router = APIRouter(tags=["devices"])

DevicePath = Annotated[DeviceId, Path(description="the device's id")]


@router.get("/v1/devices", operation_id="devices-list")
def list_devices(_: AdminDep, session: SessionDep) -> list[DeviceView]:
    """Every enrolled device with its twin and telemetry totals, by id."""
    return devices.views(session)


@router.get("/v1/devices/{device_id}", operation_id="devices-get")
def get_device(_: AdminDep, device_id: DevicePath, session: SessionDep) -> DeviceView:
    return devices.view(session, device_id)


@router.post(
    "/v1/devices/{device_id}/approval",
    operation_id="devices-approve",
    responses={409: {"description": "no enrolment of the id waits for approval"}},
)
def approve_reenrolment(_: AdminDep, device_id: DevicePath, session: WriteSessionDep) -> DeviceView:
    """Let the next enrolment of this enrolled id through without its device token, once: for
    a device that lost its token, whose enrolment was refused and now waits. Its current token
    stays valid until that enrolment."""
    view = devices.approve(session, device_id)
    session.commit()
    return view
