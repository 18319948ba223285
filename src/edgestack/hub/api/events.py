from typing import Annotated

from fastapi import APIRouter, Depends, Query

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import AdminDep, DeviceDep, SessionDep, WindowDep, WriteSessionDep
from edgestack.hub.store import events
from edgestack.protocol import DeviceId, EventBatch, EventView, IngestAck

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
    window: WindowDep,
    device: Annotated[DeviceId | None, Query(description="only this device's events")] = None,
) -> list[EventView]:
    """One page of events, oldest first: pass the last id seen as `after_id` for the next page
    and to follow the stream. With `order=newest`, newest first: pass the last id seen as
    `before_id` for the page before."""
    return events.since(session, window, device_id=device)
