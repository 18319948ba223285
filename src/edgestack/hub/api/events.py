from typing import Annotated

from fastapi import APIRouter, Depends, Query

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import AdminDep, DeviceDep, SessionDep, WriteSessionDep
from edgestack.hub.store import events
from edgestack.protocol import INT64_MAX, EventBatch, EventView, IngestAck

__all__ = ["router"]

router = APIRouter(tags=["events"])

EventBody = Annotated[EventBatch, Depends(json_body(EventBatch))]


@router.post("/v1/devices/{device_id}/events", operation_id="events-ingest")
def ingest_events(device_id: DeviceDep, batch: EventBody, session: WriteSessionDep) -> IngestAck:
    """Store a batch of events once; the body may be gzip-compressed."""
    ack = events.ingest(session, device_id, batch)
    session.commit()
    return ack


@router.get("/v1/events", operation_id="events-list")
def list_events(
    _: AdminDep,
    session: SessionDep,
    device: Annotated[
        str | None, Query(max_length=63, description="only this device's events")
    ] = None,
    after_id: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="only events with a larger id")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventView]:
    """Events oldest first; pass the last id seen as `after_id` to follow the stream."""
    return events.since(session, after_id=after_id, device_id=device, limit=limit)
