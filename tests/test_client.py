"""The admin client as the CLI uses it, against a scripted hub."""

import itertools
from datetime import UTC, datetime

import httpx
import pytest

from edgestack.client import HubClient, HubError
from edgestack.protocol import (
    Curated,
    DatasetVersion,
    Event,
    EventView,
    Relabel,
    SampleCounts,
    SampleSelection,
)

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
    # As the stream sends them: each event its id, kind and data, a blank line after; and a
    # keep-alive comment, which carries no event.
    text = "".join(
        f"id: {v.id}\nevent: {v.event.kind}\ndata: {v.model_dump_json()}\n\n" for v in views
    )
    return httpx.Response(
        200, text=": keep-alive\n\n" + text, headers={"content-type": "text/event-stream"}
    )


def test_following_events_waits_out_a_hub_restart_and_misses_nothing() -> None:
    # The stream sends one event and drops, the hub goes away for two tries, and comes back
    # with what arrived meanwhile.
    answers = iter([_page(1), None, None, _page(2, 3)])
    resumed_after: list[str | None] = []

    def scripted(request: httpx.Request) -> httpx.Response:
        resumed_after.append(request.headers.get("Last-Event-ID"))
        answer = next(answers, _page())
        if answer is None:
            raise httpx.ConnectError("connection refused", request=request)
        return answer

    client = HubClient("http://hub", admin_token="t", transport=httpx.MockTransport(scripted))

    followed = [e.id for e in itertools.islice(client.stream_events(retry_s=0), 3)]

    assert followed == [1, 2, 3]
    assert resumed_after[:4] == ["0", "1", "1", "1"]


def test_following_events_stops_on_a_refusal() -> None:
    def refusing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": "this route needs the admin token"})

    client = HubClient("http://hub", admin_token="t", transport=httpx.MockTransport(refusing))

    with pytest.raises(HubError, match="401 this route needs the admin token"):
        next(client.stream_events(retry_s=0))


def test_a_devices_telemetry_is_asked_for_a_page_at_a_time() -> None:
    asked: list[httpx.URL] = []
    batch = {
        "batch_id": "00000000-0000-0000-0000-000000000001",
        "seq": 4,
        "start": "2026-11-30T12:00:00Z",
        "end": "2026-11-30T12:00:05Z",
        "windows": 10,
        "raw_bytes": 0,
        "uplink_bytes": 0,
    }

    def hub(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        view = {"id": 7, "device_id": "motor-1", "received_at": AT.isoformat(), "batch": batch}
        return httpx.Response(200, json=[view])

    with HubClient("http://hub", admin_token="t", transport=httpx.MockTransport(hub)) as client:
        page = client.telemetry("motor-1", after_id=3, limit=20)

    assert [(v.id, v.batch.seq) for v in page] == [(7, 4)]
    assert asked[0].path == "/api/v1/devices/motor-1/telemetry"
    assert dict(asked[0].params) == {"after_id": "3", "limit": "20"}


def test_a_dataset_name_as_written_stays_one_segment_of_the_path() -> None:
    asked: list[httpx.URL] = []

    def hub(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        if request.url.path.endswith("parquet"):
            return httpx.Response(200, content=b"PAR1")
        return httpx.Response(201, content=curated.model_dump_json())

    name = "Worn #2? 50%/x"
    frozen = DatasetVersion(
        version=2, frozen_at=datetime.now(UTC), spec="0" * 16, counts=SampleCounts(total=1)
    )
    curated = Curated(changed=1, version=frozen)
    with HubClient("http://hub", admin_token="t", transport=httpx.MockTransport(hub)) as client:
        client.dataset_parquet(name, 1)
        client.relabel(name, Relabel(to="worn", device="m1"))
        client.remove_samples(name, SampleSelection(device="m1"))

    quoted = b"/api/v1/datasets/Worn%20%232%3F%2050%25%2Fx"
    assert [url.raw_path for url in asked] == [
        quoted + b"/versions/1/parquet",
        quoted + b"/relabel",
        quoted + b"/removal",
    ]
