from typing import Annotated

from fastapi import APIRouter, Depends, Path

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import DeviceDep, HubDep, SessionDep, ViewerDep, WindowDep
from edgestack.hub.api.paging import PagerDep
from edgestack.hub.store import telemetry
from edgestack.protocol import DeviceId, IngestAck, TelemetryBatch, TelemetryView

__all__ = ["router"]

router = APIRouter(tags=["telemetry"])

TelemetryBody = Annotated[TelemetryBatch, Depends(json_body(TelemetryBatch))]


@router.post("/devices/{device_id}/telemetry", operation_id="telemetry-ingest")
async def ingest_telemetry(device_id: DeviceDep, batch: TelemetryBody, hub: HubDep) -> IngestAck:
    """Store a batch once and add it to the device's totals; a batch sent again is acked
    with `duplicate: true` and changes nothing. The body may be gzip-compressed. The answer
    comes once the batch is committed, with other devices' batches of the same moment."""
    return await hub.writes.store(telemetry.ingest_many, (device_id, batch))


@router.get("/devices/{device_id}/telemetry", operation_id="telemetry-list")
def list_telemetry(
    _: ViewerDep,
    device_id: Annotated[DeviceId, Path(description="the device's id")],
    session: SessionDep,
    window: WindowDep,
    pager: PagerDep,
) -> list[TelemetryView]:
    """One page of the device's telemetry batches, oldest first: pass the last id seen as
    `after_id` to follow them (the dashboard's live charts do). With `order=newest`, newest
    first: pass the last id seen as `before_id` for the page before."""
    return pager.by_id(window, telemetry.batches(session, device_id, window))
