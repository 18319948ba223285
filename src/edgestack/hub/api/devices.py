from fastapi import APIRouter

from edgestack.hub.api.deps import AdminDep, SessionDep
from edgestack.hub.store import devices
from edgestack.protocol import DeviceView

__all__ = ["router"]

router = APIRouter(tags=["devices"])


@router.get("/v1/devices", operation_id="devices-list")
def list_devices(_: AdminDep, session: SessionDep) -> list[DeviceView]:
    """Every enrolled device with its twin and telemetry totals, by id."""
    return devices.views(session)


@router.get("/v1/devices/{device_id}", operation_id="devices-get")
def get_device(_: AdminDep, device_id: str, session: SessionDep) -> DeviceView:
    return devices.view(session, device_id)
