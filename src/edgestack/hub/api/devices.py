from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    AuditedAdminDep,
    AuditedOperatorDep,
    SessionDep,
    ViewerDep,
    WriteSessionDep,
)
from edgestack.hub.api.paging import KeysDep, PagerDep
from edgestack.hub.store import devices
from edgestack.protocol import DeviceId, DeviceStatus, DeviceView, TagsPatch, TagTerm

__all__ = ["router"]

router = APIRouter(tags=["devices"])

DevicePath = Annotated[DeviceId, Path(description="the device's id")]
TagsBody = Annotated[TagsPatch, Depends(json_body(TagsPatch))]


@router.get("/devices", operation_id="devices-list")
def list_devices(
    _: ViewerDep,
    session: SessionDep,
    pager: PagerDep,
    keys: KeysDep,
    tag: Annotated[
        list[TagTerm] | None,
        Query(description="only devices carrying this tag, key=value; repeat: all must hold"),
    ] = None,
    status: Annotated[
        DeviceStatus | None, Query(description="only devices reporting this status")
    ] = None,
) -> list[DeviceView]:
    """One page of the enrolled devices with their twins and telemetry totals, by id (pass
    the last id as `after` for the next); only those carrying every `tag` and reporting
    `status`, when given."""
    # One more than the page, which tells the pager whether another follows.
    views = devices.views(
        session, tags=tag or (), status=status, after=keys.after, limit=keys.limit + 1
    )
    return pager.by_key(keys, views, lambda view: view.device_id)


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
