"""Deployments: point devices' desired state at a registered bundle."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.bundle import Footprint, Manifest
from edgestack.hub.errors import Conflict, NotFound
from edgestack.hub.store import devices, registry
from edgestack.hub.store.tables import DeviceRow, ModelRow
from edgestack.protocol import BundleRef, DeployRequest, DeployResponse

__all__ = ["deploy"]


def deploy(session: Session, request: DeployRequest) -> DeployResponse:
    """Set `desired.bundle` on the devices asked for (every enrolled one when none are),
    bumping each desired version; refuse the lot if any model or device is unknown, or,
    unless forced, if the bundle's footprint does not fit any device's profile."""
    ref = registry.resolve(session, request.model, request.version)
    enrolled = set(session.scalars(select(DeviceRow.device_id)))
    targets = sorted(enrolled if request.devices is None else set(request.devices))
    unknown = [device_id for device_id in targets if device_id not in enrolled]
    if unknown:
        raise NotFound(
            f"devices not enrolled: {', '.join(unknown)}; enrol them with POST /v1/enrol "
            "or leave them out of devices"
        )
    footprint = _footprint(session, ref)
    if footprint is not None and not request.force:
        _refuse_misfits(session, ref, footprint, targets)
    devices.deploy(session, targets, ref)
    return DeployResponse(bundle=ref, devices=targets)


def _footprint(session: Session, ref: BundleRef) -> Footprint | None:
    manifest = session.scalar(
        select(ModelRow.manifest).where(ModelRow.name == ref.name, ModelRow.version == ref.version)
    )
    return Manifest.model_validate(manifest).footprint


def _refuse_misfits(
    session: Session, ref: BundleRef, footprint: Footprint, targets: list[str]
) -> None:
    misfits = []
    for device_id in targets:
        profile = devices.profile(devices.get(session, device_id))
        reasons = profile.refuses(footprint)
        if reasons:
            misfits.append(f"{device_id} (profile {profile.name}): {'; '.join(reasons)}")
    if misfits:
        raise Conflict(
            f"model '{ref.name}' version {ref.version} does not fit {len(misfits)} of "
            f"{len(targets)} devices: {' | '.join(misfits)}; deploy a smaller or optimised "
            "version, set the devices' profile in their desired state if it is wrong, or "
            "set force (edgestack deploy --force) to deploy anyway"
        )
