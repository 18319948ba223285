from typing import Annotated

from fastapi import APIRouter, Depends

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import DeviceDep, WriteSessionDep
from edgestack.hub.store import telemetry
from edgestack.protocol import IngestAck, TelemetryBatch

__all__ = ["router"]

router = APIRouter(tags=["telemetry"])

TelemetryBody = Annotated[TelemetryBatch, Depends(json_body(TelemetryBatch))]


@router.post("/devices/{device_id}/telemetry", operation_id="telemetry-ingest")
def ingest_telemetry(
    device_id: DeviceDep, batch: TelemetryBody, session: WriteSessionDep
) -> IngestAck:
    """Store a batch once and add it to the device's totals; a batch sent again is acked
    with `duplicate: true` and changes nothing. The body may be gzip-compressed."""
    ack = telemetry.ingest(session, device_id, batch)
    session.commit()
    return ack
