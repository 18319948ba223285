import asyncio

import httpx
import pytest

from edgestack.client import sse_events
from edgestack.hub.api import events as events_api
from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import EventRow
from edgestack.protocol import EventView

from .factories import ADMIN, Device, Enrol, count, event_batch

pytestmark = pytest.mark.anyio


async def test_events_are_stored_once_and_listed_in_order(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    batch = event_batch(3)

    first = await client.post(
        "/api/v1/devices/motor-1/events", content=batch.model_dump_json(), headers=device.auth
    )
    again = await client.post(
        "/api/v1/devices/motor-1/events", content=batch.model_dump_json(), headers=device.auth
    )

    assert first.json() == {"batch_id": str(batch.batch_id), "accepted": 3, "duplicate": False}
    assert again.json() == {"batch_id": str(batch.batch_id), "accepted": 0, "duplicate": True}
    assert count(hub, EventRow) == 1 + 3  # the hub's own of the enrolment, then the batch
    listed = [
        EventView.model_validate(e)
        for e in (await client.get("/api/v1/events", headers=ADMIN)).json()
    ]
    assert listed[0].event.kind == "device_enrolled"
    assert [view.event for view in listed[1:]] == batch.events
    assert [view.id for view in listed] == sorted(view.id for view in listed)
    assert {view.device_id for view in listed} == {"motor-1"}


async def test_events_follow_after_id_device_and_limit(
    client: httpx.AsyncClient, device: Device, enrol: Enrol
) -> None:
    other = await enrol("motor-2")
    for who in (device, other, device):
        await client.post(
            f"/api/v1/devices/{who.device_id}/events",
            content=event_batch(2).model_dump_json(),
            headers=who.auth,
        )
    everything = (await client.get("/api/v1/events", headers=ADMIN)).json()[2:]  # past enrolments

    mine = await client.get("/api/v1/events", params={"device": "motor-1"}, headers=ADMIN)
    later = await client.get(
        "/api/v1/events", params={"after_id": everything[1]["id"], "limit": 3}, headers=ADMIN
    )

    assert len(everything) == 6
    assert [e["id"] for e in mine.json()][1:] == [
        e["id"] for e in everything if e["device_id"] == "motor-1"
    ]
    assert [e["id"] for e in later.json()] == [e["id"] for e in everything[2:5]]


async def test_an_empty_event_batch_is_refused(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    body = event_batch(1).model_copy(update={"events": []}).model_dump_json()

    response = await client.post(
        "/api/v1/devices/motor-1/events", content=body, headers=device.auth
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.events: List should have at least 1 item")
    assert count(hub, EventRow) == 1  # the enrolment's


async def test_events_page_newest_first_before_an_id(
    client: httpx.AsyncClient, device: Device
) -> None:
    for _ in range(3):
        await client.post(
            "/api/v1/devices/motor-1/events",
            content=event_batch(2).model_dump_json(),
            headers=device.auth,
        )
    ids = [e["id"] for e in (await client.get("/api/v1/events", headers=ADMIN)).json()]

    newest = await client.get(
        "/api/v1/events", params={"order": "newest", "limit": 4}, headers=ADMIN
    )
    before = await client.get(
        "/api/v1/events",
        params={"order": "newest", "limit": 4, "before_id": newest.json()[-1]["id"]},
        headers=ADMIN,
    )
    between = await client.get(
        "/api/v1/events", params={"after_id": ids[0], "before_id": ids[3]}, headers=ADMIN
    )

    assert [e["id"] for e in newest.json()] == ids[::-1][:4]
    assert [e["id"] for e in before.json()] == ids[::-1][4:8]
    assert [e["id"] for e in between.json()] == ids[1:3]


async def test_ids_past_32_bits_find_nothing_on_either_database(
    client: httpx.AsyncClient, device: Device
) -> None:
    await client.post(
        "/api/v1/devices/motor-1/events",
        content=event_batch(3).model_dump_json(),
        headers=device.auth,
    )

    after = {"after_id": 2**62}
    events = await client.get("/api/v1/events", params=after, headers=ADMIN)
    samples = await client.get("/api/v1/samples", params=after, headers=ADMIN)
    audit = await client.get("/api/v1/audit", params=after, headers=ADMIN)
    job = await client.get(f"/api/v1/jobs/{2**40}", headers=ADMIN)

    assert (events.status_code, events.json()) == (200, [])
    assert (samples.status_code, samples.json()["samples"]) == (200, [])
    assert (audit.status_code, audit.json()) == (200, [])
    assert job.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 1001}, "query.limit"),
        ({"before_id": 0}, "query.before_id"),
        ({"after_id": 2**63}, "query.after_id"),
        ({"order": "sideways"}, "query.order"),
    ],
)
async def test_a_page_out_of_bounds_is_refused_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    for path in ("/api/v1/events", "/api/v1/samples"):
        response = await client.get(path, params=params, headers=ADMIN)

        assert response.status_code == 422
        assert response.json()["detail"].startswith(f"{field}:")


async def test_events_of_a_malformed_device_id_are_refused_naming_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/events", params={"device": "Motor 1!"}, headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["detail"].startswith("query.device:")


async def _stream(client: httpx.AsyncClient, **params: object) -> list[EventView]:
    headers = dict(ADMIN)
    if "last_event_id" in params:
        headers["Last-Event-ID"] = str(params.pop("last_event_id"))
    response = await client.get(
        "/api/v1/events/stream", params={"follow": "false", **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return list(sse_events(response.text.splitlines()))


async def test_the_event_stream_sends_ids_kinds_and_resumes_after_the_last_id_seen(
    client: httpx.AsyncClient, device: Device, enrol: Enrol
) -> None:
    other = await enrol("motor-2")
    for who in (device, other):
        await client.post(
            f"/api/v1/devices/{who.device_id}/events",
            content=event_batch(3).model_dump_json(),
            headers=who.auth,
        )
    listed = [
        EventView.model_validate(e)
        for e in (await client.get("/api/v1/events", headers=ADMIN)).json()
    ]

    everything = await _stream(client)
    resumed = await _stream(client, last_event_id=everything[3].id, after_id=0)
    alarms_of_one = await _stream(client, device="motor-2", kind="alarm_raised")
    warnings = await _stream(client, severity="warning")
    critical = await _stream(client, severity="critical")
    raw = (await client.get("/api/v1/events/stream?follow=false", headers=ADMIN)).text

    assert everything == listed
    assert resumed == listed[4:]  # the header wins over after_id
    assert [e.id for e in alarms_of_one] == [
        e.id for e in listed if e.device_id == "motor-2" and e.event.kind == "alarm_raised"
    ]
    assert {e.event.kind for e in warnings} == {"alarm_raised"} and len(warnings) == 6
    assert critical == []
    first = raw.split("\n\n")[0].splitlines()
    assert first[:2] == [f"id: {listed[0].id}", f"event: {listed[0].event.kind}"]


async def _tag(client: httpx.AsyncClient, device_id: str, **tags: str) -> None:
    response = await client.patch(
        f"/api/v1/devices/{device_id}/tags", json={"tags": tags}, headers=ADMIN
    )
    assert response.status_code == 200, response.text


async def test_events_of_devices_carrying_a_tag_are_listed_and_streamed_alone(
    client: httpx.AsyncClient, device: Device, enrol: Enrol
) -> None:
    others = [await enrol("motor-2"), await enrol("motor-3")]
    await _tag(client, "motor-1", site="plant-4", line="2")
    await _tag(client, "motor-2", site="plant-4", line="3")
    await _tag(client, "motor-3", site="plant-9", line="2", **{"zone.a-b": "x"})
    for who in (device, *others):
        await client.post(
            f"/api/v1/devices/{who.device_id}/events",
            content=event_batch(2).model_dump_json(),
            headers=who.auth,
        )

    plant = await client.get("/api/v1/events", params={"tag": "site=plant-4"}, headers=ADMIN)
    both = await client.get(
        "/api/v1/events", params=[("tag", "site=plant-4"), ("tag", "line=2")], headers=ADMIN
    )
    nowhere = await client.get("/api/v1/events", params={"tag": "site=mars"}, headers=ADMIN)
    dotted = await client.get("/api/v1/events", params={"tag": "zone.a-b=x"}, headers=ADMIN)
    streamed = await _stream(client, tag="site=plant-4", kind="alarm_raised")

    assert {e["device_id"] for e in plant.json()} == {"motor-1", "motor-2"}
    assert len(plant.json()) == 2 * (1 + 2)  # each one's enrolment and its alarms
    assert {e["device_id"] for e in both.json()} == {"motor-1"}
    assert nowhere.json() == []
    assert {e["device_id"] for e in dotted.json()} == {"motor-3"}
    assert [e.device_id for e in streamed] == ["motor-1"] * 2 + ["motor-2"] * 2


@pytest.mark.parametrize("tag", ["site", "Site=a", "site=a b", "=a"])
async def test_a_malformed_tag_filter_is_refused_naming_it(
    client: httpx.AsyncClient, tag: str
) -> None:
    for path in ("/api/v1/events", "/api/v1/events/stream"):
        response = await client.get(path, params={"tag": tag, "follow": "false"}, headers=ADMIN)

        assert response.status_code == 422
        assert response.json()["detail"].startswith("query.tag[0]: Value error,")
        assert "write key=value" in response.json()["detail"]


# Latin-1 on the wire, as a header may be: "²" is a digit to str.isdigit.
@pytest.mark.parametrize("stated", ["\u00b2".encode("latin-1"), b"12a", b"99999999999999999999"])
async def test_a_last_event_id_that_is_no_id_is_refused_naming_it(
    client: httpx.AsyncClient, stated: bytes
) -> None:
    headers = {**ADMIN, "Last-Event-ID": stated}

    response = await client.get(
        "/api/v1/events/stream", params={"follow": "false"}, headers=headers
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Last-Event-ID:")


async def test_a_followed_stream_ends_once_its_token_is_revoked(
    client: httpx.AsyncClient, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_api, "_RECHECK_S", 0.05)
    made = await client.post(
        "/api/v1/tokens", json={"name": "wall", "role": "viewer"}, headers=ADMIN
    )
    viewer = {"Authorization": f"Bearer {made.json()['token']}"}
    # Through ASGI the answer arrives whole, so it comes back only when the stream ends.
    following = asyncio.create_task(client.get("/api/v1/events/stream", headers=viewer))
    await asyncio.sleep(0.3)
    assert not following.done()

    await client.delete("/api/v1/tokens/wall", headers=ADMIN)
    response = await asyncio.wait_for(following, timeout=10)

    assert response.status_code == 200
    assert [view.event.kind for view in sse_events(response.text.splitlines())] == [
        "device_enrolled"
    ]
