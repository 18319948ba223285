"""Deployments: point devices' desired state at a registered bundle."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.errors import NotFound
from edgestack.hub.store import devices, registry
from edgestack.hub.store.tables import DeviceRow
from edgestack.protocol import DeployRequest, DeployResponse

__all__ = ["deploy"]


def deploy(session: Session, request: DeployRequest) -> DeployResponse:
    """Set `desired.bundle` on the devices asked for (every enrolled one when none are),
    bumping each desired version; refuse the lot if any model or device is unknown."""
    ref = registry.resolve(session, request.model, request.version)
    enrolled = set(session.scalars(select(DeviceRow.device_id)))
    targets = sorted(enrolled if request.devices is None else set(request.devices))
    unknown = [device_id for device_id in targets if device_id not in enrolled]
    if unknown:
        raise NotFound(
            f"devices not enrolled: {', '.join(unknown)}; enrol them with POST /v1/enrol "
            "or leave them out of devices"
        )
    devices.deploy(session, targets, ref)
    return DeployResponse(bundle=ref, devices=targets)
