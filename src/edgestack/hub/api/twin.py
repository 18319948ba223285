"""The device twin: desired state (long-polled by the device, patched by admins) and
reported state (put by the device)."""

import asyncio
from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    AuditedOperatorDep,
    CallerProtocolDep,
    DeviceDep,
    HubDep,
    WriteSessionDep,
)
from edgestack.hub.errors import Conflict, NotFound
from edgestack.hub.store import collection, devices, registry
from edgestack.protocol import (
    INT64_MAX,
    BundleRef,
    DesiredPatch,
    DesiredState,
    DeviceId,
    ReportedState,
)

__all__ = ["router"]

router = APIRouter(tags=["twin"])

PatchBody = Annotated[DesiredPatch, Depends(json_body(DesiredPatch))]
ReportedBody = Annotated[ReportedState, Depends(json_body(ReportedState))]


@router.get(
    "/devices/{device_id}/desired",
    operation_id="twin-get-desired",
    response_model=DesiredState,
    response_model_exclude_none=True,
)
async def get_desired(
    device_id: DeviceDep,
    hub: HubDep,
    protocol: CallerProtocolDep,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=INT64_MAX,
            description="the version the device holds; left out, answer at once",
        ),
    ] = None,
    wait: Annotated[
        float, Query(ge=0, le=60, description="seconds to wait for a version other than after")
    ] = 25,
) -> JSONResponse:
    """The device's desired state, as soon as its version differs from `after`, as the
    protocol the device speaks has it (`DesiredState.for_protocol`).

    A version *below* `after` is answered at once too: the hub was restored from an older
    copy, and the device must learn the truth rather than wait for a number it will not see.
    """
    changed = hub.notifier.watch(device_id)
    state = await hub.writes.store(devices.seen_many, device_id)
    if after is not None and state.version == after:
        # Watched before the state was read: a change made since, here or on a replica, wakes
        # it, so a wait that ends without one answers the state read, as it still is.
        with suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout=wait)
            # Woken with thousands of others by one deployment: read in the writer's groups,
            # one statement for many devices rather than a thread and a session each.
            state = await hub.writes.store(devices.seen_many, device_id)
    return JSONResponse(state.for_protocol(protocol))


@router.patch("/devices/{device_id}/desired", operation_id="twin-patch-desired")
def patch_desired(
    audit: AuditedOperatorDep,
    device_id: Annotated[DeviceId, Path(description="the device's id")],
    patch: PatchBody,
    hub: HubDep,
    session: WriteSessionDep,
) -> DesiredState:
    """Change the fields given; a field given as null is cleared to its default.

    409 for a `collect` into a dataset whose samples are of other sensors, or another rate,
    than the device feeds: refused before the device is asked to collect. 404 for an
    `offload` policy naming a model that is not registered, 409 for one naming a registered
    version by another digest: no device is sent to a server for a bundle it cannot have.
    """
    before = devices.desired(session, device_id)
    if patch.collect is not None:
        collection.check(session, device_id, patch.collect)
    if patch.offload is not None:
        _check_offload(session, patch.offload.model)
    state = devices.update_desired(session, device_id, patch)
    audit.changed(before, state)
    session.commit()
    hub.desired_changed([device_id])
    return state


@router.put("/devices/{device_id}/reported", operation_id="twin-put-reported")
async def put_reported(device_id: DeviceDep, reported: ReportedBody, hub: HubDep) -> ReportedState:
    """Store the device's reported state; the answer comes once it is committed, with other
    devices' writes of the same moment."""
    return await hub.writes.store(devices.report_many, (device_id, reported))


def _check_offload(session: Session, model: BundleRef) -> None:
    try:
        registered = registry.resolve(session, model.name, model.version)
    except NotFound as exc:
        raise NotFound(f"offload.model: {exc.detail}") from None
    if registered.digest != model.digest:
        raise Conflict(
            f"offload.model: {model.name} v{model.version} is registered as bundle "
            f"{registered.digest}, not {model.digest}; name it by its digest (edgestack models)"
        )
