import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.requests import HTTPConnection
from fastapi.responses import StreamingResponse
from pydantic import Field, ValidationError

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    DeviceDep,
    HubDep,
    SessionDep,
    ViewerDep,
    WindowDep,
    WriteSessionDep,
    connection_caller,
    foreign_page,
)
from edgestack.hub.api.paging import PagerDep
from edgestack.hub.api.problems import describe_errors
from edgestack.hub.context import HubContext
from edgestack.hub.store import events
from edgestack.hub.store.db import Window
from edgestack.protocol import (
    INT64_MAX,
    EventBatch,
    EventFilter,
    EventView,
    IngestAck,
    Problem,
)

__all__ = ["router"]

router = APIRouter(tags=["events"])

EventBody = Annotated[EventBatch, Depends(json_body(EventBatch))]
FilterQuery = Annotated[EventFilter, Query()]
_POLL_S = 0.5  # how often a stream looks for new events: any hub process on the database sees them
_KEEP_ALIVE_S = 15.0  # a comment line so proxies and clients know the stream is alive
_PAGE = 500
# How often a stream asks again whether its token still works: a revoked one is cut off.
_RECHECK_S = 15.0


@router.post("/devices/{device_id}/events", operation_id="events-ingest")
def ingest_events(device_id: DeviceDep, batch: EventBody, session: WriteSessionDep) -> IngestAck:
    """Store a batch of events once; the body may be gzip-compressed."""
    ack = events.ingest(session, device_id, batch)
    session.commit()
    return ack


@router.get("/events", operation_id="events-list")
def list_events(
    _: ViewerDep, session: SessionDep, window: WindowDep, pager: PagerDep, taken: FilterQuery
) -> list[EventView]:
    """One page of events, oldest first: pass the last id seen as `after_id` for the next page
    and to follow the stream. With `order=newest`, newest first: pass the last id seen as
    `before_id` for the page before. Only those of `device`, `tag`, `kind` and `severity`
    when given."""
    return pager.by_id(window, events.since(session, window, taken))


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
    taken: FilterQuery,
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
    event and sees none twice. The same stream goes over a WebSocket at `/api/v1/events/ws`
    (resumed with `after_id`), one EventView as JSON per message."""
    start = after_id if last_event_id is None else _event_id(last_event_id)
    return StreamingResponse(
        _sse(hub, request, start, taken, follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event_id(stated: str) -> int:
    if not (stated.isascii() and stated.isdigit() and int(stated) <= INT64_MAX):
        raise HTTPException(
            400,
            f"Last-Event-ID: '{stated[:20]}' is no event id; send the id of the last event "
            "seen (digits), or leave the header out and give after_id",
        )
    return int(stated)


async def _sse(
    hub: HubContext,
    request: Request,
    after_id: int,
    taken: EventFilter,
    follow: bool,
) -> AsyncIterator[str]:
    gone = _while_allowed(hub, request, request.is_disconnected)
    async for view in _following(hub, after_id, taken, follow, gone):
        if view is None:
            yield ": keep-alive\n\n"
        else:
            yield f"id: {view.id}\nevent: {view.event.kind}\ndata: {view.model_dump_json()}\n\n"


class _SocketQuery(EventFilter):
    after_id: int = Field(default=0, ge=0, le=INT64_MAX, description="start after this event id")


@router.websocket("/events/ws", name="events-socket")
async def events_socket(websocket: WebSocket) -> None:
    """The stream of `GET /events/stream` over a WebSocket: every event after `after_id` that
    `device`, `tag`, `kind` and `severity` take (query parameters), then each new one as it is
    stored, one EventView as JSON per text message. A client that reconnects with the last id
    it saw as `after_id` misses no event and sees none twice. It authenticates with a bearer
    token or the dashboard's login cookie. A refusal is one message `{"detail": ...}`, then a
    close with code 4401 (no valid token), 4403 (the role is short, or the cookie comes from
    another site's page) or 4422 (a malformed parameter); 1001 or 1012 when the hub stops."""
    hub: HubContext = websocket.app.state.hub
    await websocket.accept()
    caller = await run_in_threadpool(connection_caller, websocket, hub)
    if caller is None:
        return await _refuse(
            websocket,
            4401,
            "the event socket needs a token with the viewer role or above: send "
            "'Authorization: Bearer <token>' or log in (POST /api/v1/login) for the cookie",
        )
    bearer = websocket.headers.get("authorization", "").lower().startswith("bearer ")
    if not bearer and foreign_page(websocket):
        # A browser sends the cookie with a socket any page opens; only the hub's own may.
        return await _refuse(
            websocket,
            4403,
            f"the login cookie opens the event socket only from the hub's own pages, not from "
            f"{websocket.headers.get('origin', 'another page')[:100]}; send 'Authorization: "
            "Bearer <token>' instead",
        )
    if not caller.may("viewer"):
        return await _refuse(
            websocket,
            4403,
            f"token '{caller.name}' has the {caller.role} role; the event socket needs viewer "
            "or above: ask an admin for such a token",
        )
    params = websocket.query_params
    try:
        query = _SocketQuery.model_validate(
            {
                "device": params.get("device"),
                "tag": params.getlist("tag"),
                "kind": params.getlist("kind"),
                "severity": params.get("severity"),
                "after_id": params.get("after_id", 0),
            }
        )
    except ValidationError as exc:
        errors = ({**e, "loc": ("query", *e["loc"])} for e in exc.errors())
        return await _refuse(websocket, 4422, describe_errors(errors))
    closed = asyncio.create_task(_until_closed(websocket))

    async def disconnected() -> bool:
        return closed.done()

    gone = _while_allowed(hub, websocket, disconnected)
    try:
        async for view in _following(hub, query.after_id, query, True, gone):
            # None, a keep-alive, goes unsaid: the server pings the socket itself.
            if view is not None:
                await websocket.send_text(view.model_dump_json())
        if not closed.done():
            await websocket.close(1001, "the hub is stopping; reconnect with after_id")
    except WebSocketDisconnect:
        pass
    finally:
        closed.cancel()


def _while_allowed(
    hub: HubContext, conn: HTTPConnection, disconnected: Callable[[], Awaitable[bool]]
) -> Callable[[], Awaitable[bool]]:
    """`disconnected`, which also says the client is gone once the token it called with
    stops working (revoked, expired), asked every `_RECHECK_S`."""
    checked = asyncio.get_running_loop().time()

    async def gone() -> bool:
        nonlocal checked
        if await disconnected():
            return True
        now = asyncio.get_running_loop().time()
        if now - checked < _RECHECK_S:
            return False
        checked = now
        caller = await run_in_threadpool(connection_caller, conn, hub)
        return caller is None or not caller.may("viewer")

    return gone


async def _refuse(websocket: WebSocket, code: int, detail: str) -> None:
    await websocket.send_text(Problem(detail=detail).model_dump_json())
    # A close frame's reason holds at most 123 bytes; the message before holds it all.
    await websocket.close(code, detail.encode()[:123].decode(errors="ignore"))


async def _until_closed(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # the client has nothing to say; what it sends is ignored


async def _following(
    hub: HubContext,
    after_id: int,
    taken: EventFilter,
    follow: bool,
    gone: Callable[[], Awaitable[bool]],
) -> AsyncIterator[EventView | None]:
    """The events after `after_id` that `taken` takes, then, when following, each new one as
    it is stored, with None after each quiet `_KEEP_ALIVE_S`; until the hub stops or `gone()`
    says the client has."""
    quiet_s = 0.0
    while not hub.notifier.closing and not await gone():
        page = await run_in_threadpool(_page, hub, after_id, taken)
        for view in page:
            yield view
            after_id = view.id
        if len(page) == _PAGE:
            continue
        if not follow:
            return
        quiet_s = 0.0 if page else quiet_s + _POLL_S
        if quiet_s >= _KEEP_ALIVE_S:
            quiet_s = 0.0
            yield None
        await asyncio.sleep(_POLL_S)


def _page(hub: HubContext, after_id: int, taken: EventFilter) -> list[EventView]:
    with hub.db.session() as session:
        return events.since(session, Window(after_id=after_id, limit=_PAGE), taken)
