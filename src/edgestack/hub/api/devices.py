from typing import Annotated

from fastapi import APIRouter, Depends, Path

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    AuditedAdminDep,
    AuditedOperatorDep,
    SessionDep,
    ViewerDep,
    WriteSessionDep,
)
from edgestack.hub.store import devices
from edgestack.protocol import DeviceId, DeviceView, TagsPatch

__all__ = ["router"]

router = APIRouter(tags=["devices"])

DevicePath = Annotated[DeviceId, Path(description="the device's id")]
TagsBody = Annotated[TagsPatch, Depends(json_body(TagsPatch))]


@router.get("/devices", operation_id="devices-list")
def list_devices(_: ViewerDep, session: SessionDep) -> list[DeviceView]:
    """Every enrolled device with its twin and telemetry totals, by id."""
    return devices.views(session)


@router.get("/devices/{device_id}", operation_id="devices-get")
def get_device(_: ViewerDep, device_id: DevicePath, session: SessionDep) -> DeviceView:
    return devices.view(session, device_id)


@router.post(
    "/devices/{device_id}/approval",
    operation_id="devices-approve",
    responses={409: {"description": "no enrolment of the id waits for approval"}},
)
def approve_reenrolment(
    audit: AuditedAdminDep, device_id: DevicePath, session: WriteSessionDep
) -> DeviceView:
    """Let the next enrolment of this enrolled id through without its device token, once: for
    a device that lost its token, whose enrolment was refused and now waits. Its current token
    stays valid until that enrolment."""
    view = devices.approve(session, device_id)
    # Only an id waiting for approval may be approved.
    audit.changed({"reenrolment": "waiting"}, {"reenrolment": view.reenrolment})
    session.commit()
    return view


@router.patch("/devices/{device_id}/tags", operation_id="devices-tag")
def tag_device(
    audit: AuditedOperatorDep, device_id: DevicePath, patch: TagsBody, session: WriteSessionDep
) -> DeviceView:
    """Give the device the tags in `tags` (a key it carries takes the new value) and take away
    the keys in `remove`. Deployments target tagged devices with `tag:key=value`. A key in
    both, or more tags than a device may carry, is refused with 422 and nothing changes."""
    before = devices.view(session, device_id).tags
    view = devices.tag(session, device_id, patch)
    audit.changed(before, view.tags)
    session.commit()
    return view
