"""Deployments: point devices' desired state at a registered bundle, once each of them has
been checked to be able to run it."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.bundle import Manifest
from edgestack.hub.errors import Conflict
from edgestack.hub.store import devices, registry
from edgestack.hub.store.tables import DeviceRow, ModelRow
from edgestack.hub.store.targets import chosen
from edgestack.protocol import (
    BundleRef,
    DeployRequest,
    DeployResponse,
    DeviceChoice,
    ReportedState,
    UndeployResponse,
)

__all__ = ["deploy", "manifest_of", "misfits", "refuse_misfits", "undeploy"]


def deploy(session: Session, request: DeployRequest) -> DeployResponse:
    """Set `desired.bundle` on the devices the request names (in `devices`, by the targets
    of `to`, or every enrolled one with `all`), bumping each desired version. Refuse the lot
    if a model or device is unknown, a target matches no device or, unless forced, if any
    device cannot run the bundle (see `misfits`)."""
    targets = chosen(session, request, "edgestack deploy")
    manifest, ref = manifest_of(session, request.model, request.version)
    if not request.force:
        refuse_misfits(session, manifest, ref, targets, "edgestack deploy --force")
    devices.deploy(session, targets, ref)
    return DeployResponse(bundle=ref, devices=targets)


def refuse_misfits(
    session: Session, manifest: Manifest, ref: BundleRef, targets: list[str], forced: str
) -> None:
    """Refuse (409) if any of `targets` cannot run the bundle (see `misfits`), naming each
    such device and why; `forced` names the option that skips the check."""
    refused = {
        device_id: reasons
        for device_id in targets
        if (reasons := misfits(manifest, devices.get(session, device_id)))
    }
    if refused:
        listed = " | ".join(f"{d}: {'; '.join(why)}" for d, why in refused.items())
        raise Conflict(
            f"model '{ref.name}' version {ref.version} cannot run on {len(refused)} of "
            f"{len(targets)} devices: {listed}; deploy a version they can run, set the "
            "devices' profile in their desired state if it is wrong, or set force "
            f"({forced}) to deploy anyway"
        )


def undeploy(session: Session, choice: DeviceChoice) -> UndeployResponse:
    """Have the devices `choice` names run no model: they keep sensing, collecting and
    reporting."""
    targets = chosen(session, choice, "edgestack undeploy")
    for device_id in targets:
        devices.steer(session, device_id, bundle=None)
    return UndeployResponse(devices=targets)


def misfits(manifest: Manifest, device: DeviceRow) -> list[str]:
    """Why `device` cannot run the bundle of `manifest`; empty when it can. Checked: the
    sensors and rate its source feeds and the extractors it has, as it last reported them
    (a device that never did is a misfit), the bundle's target (C for the mcu profile only)
    and its measured footprint, if it was measured, against the device's profile."""
    reported = None if device.reported is None else ReportedState.model_validate(device.reported)
    feeds = reported.feeds if reported else None
    spec = manifest.input
    reasons = []
    if feeds is None:
        reasons.append(
            "it has not reported what it can feed a model; start its agent (of this release) "
            "and deploy again once it reports"
        )
    else:
        if spec.sensors != feeds.sensors:
            reasons.append(
                f"model needs sensors {', '.join(spec.sensors)}, "
                f"the device feeds {', '.join(feeds.sensors) or 'none'}"
            )
        if spec.rate_hz != feeds.rate_hz:
            reasons.append(
                f"model needs {spec.rate_hz:g} Hz, the device samples at {feeds.rate_hz:g} Hz"
            )
        missing = sorted({e.kind for e in spec.extractors} - set(feeds.extractors))
        if missing:
            reasons.append(f"model needs feature extractors the device lacks: {', '.join(missing)}")
    profile = devices.profile(device)
    # Agents run ONNX; C is compiled into a microcontroller's firmware.
    if manifest.target == "c" and profile.name != "mcu":
        reasons.append(
            f"the bundle is C source for the mcu profile and profile {profile.name} runs "
            "ONNX models through its agent; deploy an ONNX version of the model to it"
        )
    if manifest.footprint is not None:
        reasons.extend(
            f"(profile {profile.name}) {why}" for why in profile.refuses(manifest.footprint)
        )
    return reasons


def manifest_of(session: Session, model: str, version: int | None) -> tuple[Manifest, BundleRef]:
    """The manifest and bundle of registered `model` at `version`, the latest when None."""
    ref = registry.resolve(session, model, version)
    manifest = session.scalar(
        select(ModelRow.manifest).where(ModelRow.name == ref.name, ModelRow.version == ref.version)
    )
    return Manifest.model_validate(manifest), ref
