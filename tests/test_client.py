"""The admin client as the CLI uses it, against a scripted hub."""

import itertools
from datetime import UTC, datetime

import httpx
import pytest

from edgestack.client import HubClient, HubError
from edgestack.protocol import Event, EventView

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _page(*ids: int) -> httpx.Response:
    views = [
        EventView(
            id=i,
            device_id="motor-1",
            received_at=AT,
            event=Event(
                event_id=f"00000000-0000-0000-0000-{i:012d}",
                at=AT,
                kind="alarm_raised",
                severity="warning",
                message=f"alarm {i}",
            ),
        )
        for i in ids
    ]
    return httpx.Response(200, text="[" + ",".join(v.model_dump_json() for v in views) + "]")


def test_following_events_waits_out_a_hub_restart_and_misses_nothing() -> None:
    # The hub answers, goes away for two asks, and comes back with what arrived meanwhile.
    answers = iter([_page(1), None, None, _page(2, 3)])
    asked: list[str | None] = []

    def scripted(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params.get("after_id"))
        answer = next(answers, _page())
        if answer is None:
            raise httpx.ConnectError("connection refused", request=request)
        return answer

    client = HubClient("http://hub", admin_token="t", transport=httpx.MockTransport(scripted))

    followed = [e.id for e in itertools.islice(client.follow_events(every_s=0), 3)]

    assert followed == [1, 2, 3]
    assert asked[:4] == ["0", "1", "1", "1"]


def test_following_events_stops_on_a_refusal() -> None:
    def refusing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": "this route needs the admin token"})

    client = HubClient("http://hub", admin_token="t", transport=httpx.MockTransport(refusing))

    with pytest.raises(HubError, match="401 this route needs the admin token"):
        next(client.follow_events(every_s=0))
