import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    DeviceDep,
    HubDep,
    SessionDep,
    ViewerDep,
    WindowDep,
    WriteSessionDep,
)
from edgestack.hub.api.paging import PagerDep
from edgestack.hub.context import HubContext
from edgestack.hub.store import events
from edgestack.hub.store.db import Window
from edgestack.protocol import (
    INT64_MAX,
    DeviceId,
    EventBatch,
    EventKind,
    EventView,
    IngestAck,
)

__all__ = ["router"]

router = APIRouter(tags=["events"])

EventBody = Annotated[EventBatch, Depends(json_body(EventBatch))]
Severity = Literal["info", "warning", "critical"]
_AT_LEAST: dict[Severity, list[str]] = {
    "info": ["info", "warning", "critical"],
    "warning": ["warning", "critical"],
    "critical": ["critical"],
}
_POLL_S = 0.5  # how often a stream looks for new events: any hub process on the database sees them
_KEEP_ALIVE_S = 15.0  # a comment line so proxies and clients know the stream is alive
_PAGE = 500


@router.post("/devices/{device_id}/events", operation_id="events-ingest")
def ingest_events(device_id: DeviceDep, batch: EventBody, session: WriteSessionDep) -> IngestAck:
    """Store a batch of events once; the body may be gzip-compressed."""
    ack = events.ingest(session, device_id, batch)
    session.commit()
    return ack


@router.get("/events", operation_id="events-list")
def list_events(
    _: ViewerDep,
    session: SessionDep,
    window: WindowDep,
    pager: PagerDep,
    device: Annotated[DeviceId | None, Query(description="only this device's events")] = None,
) -> list[EventView]:
    """One page of events, oldest first: pass the last id seen as `after_id` for the next page
    and to follow the stream. With `order=newest`, newest first: pass the last id seen as
    `before_id` for the page before."""
    return pager.by_id(window, events.since(session, window, device_id=device))


@router.get(
    "/events/stream",
    operation_id="events-stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_events(
    _: ViewerDep,
    request: Request,
    hub: HubDep,
    device: Annotated[DeviceId | None, Query(description="only this device's events")] = None,
    kind: Annotated[
        list[EventKind] | None, Query(description="only events of these kinds; repeat")
    ] = None,
    severity: Annotated[
        Severity | None, Query(description="only events of this severity or worse")
    ] = None,
    after_id: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="start after this event id")
    ] = 0,
    follow: Annotated[
        bool, Query(description="keep the stream open for new events; false: end once caught up")
    ] = True,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=20,
            description="resume after this id, as an EventSource reconnecting sends it",
        ),
    ] = None,
) -> StreamingResponse:
    """Every event after `after_id` (or the `Last-Event-ID` header, which wins), then each new
    one as it is stored, as Server-Sent Events: `id` is the event's id, `event` its kind,
    `data` its EventView as JSON. A client that reconnects with the last id it saw misses no
    event and sees none twice."""
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after_id
    kinds: list[str] = list(kind or [])
    severities = _AT_LEAST[severity] if severity else []
    return StreamingResponse(
        _sse(hub, request, start, device, kinds, severities, follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    hub: HubContext,
    request: Request,
    after_id: int,
    device: str | None,
    kinds: list[str],
    severities: list[str],
    follow: bool,
) -> AsyncIterator[str]:
    quiet_s = 0.0
    while not hub.notifier.closing and not await request.is_disconnected():
        page = await run_in_threadpool(_page, hub, after_id, device, kinds, severities)
        for view in page:
            yield f"id: {view.id}\nevent: {view.event.kind}\ndata: {view.model_dump_json()}\n\n"
            after_id = view.id
        if len(page) == _PAGE:
            continue
        if not follow:
            return
        quiet_s = 0.0 if page else quiet_s + _POLL_S
        if quiet_s >= _KEEP_ALIVE_S:
            quiet_s = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(_POLL_S)


def _page(
    hub: HubContext, after_id: int, device: str | None, kinds: list[str], severities: list[str]
) -> list[EventView]:
    with hub.db.session() as session:
        return events.since(
            session,
            Window(after_id=after_id, limit=_PAGE),
            device_id=device,
            kinds=kinds,
            severities=severities,
        )
