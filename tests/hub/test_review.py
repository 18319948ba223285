"""Windows for review: asked of a device, sent once within the count, labelled into a dataset."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import ReviewWindowRow, SampleRow
from edgestack.protocol import DatasetView, ReviewWindow, WindowBatch

from .factories import ADMIN, SPEC, Device, Enrol, count

pytestmark = pytest.mark.anyio

DIGEST = "ab" * 32


def _batch(request_id: int, n: int, *, first: int = 0) -> WindowBatch:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    return WindowBatch(
        batch_id=uuid.uuid4(),
        request_id=request_id,
        spec=SPEC,
        bundle_digest=DIGEST,
        windows=[
            ReviewWindow(
                at=at + timedelta(seconds=first + i),
                features=[float(first + i), 1.5],
                predicted="normal",
                confidence=0.5 + i / 100,
            )
            for i in range(n)
        ],
    )


async def _ask(client: httpx.AsyncClient, device_id: str, count: int) -> httpx.Response:
    return await client.post(
        f"/api/v1/devices/{device_id}/window-requests", json={"count": count}, headers=ADMIN
    )


async def _send(client: httpx.AsyncClient, who: Device, batch: WindowBatch) -> httpx.Response:
    return await client.post(
        f"/api/v1/devices/{who.device_id}/windows",
        content=batch.model_dump_json(),
        headers=who.auth,
    )


async def test_a_device_sends_windows_only_for_its_current_request_and_within_its_count(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    unasked = await _send(client, device, _batch(1, 2))
    first = (await _ask(client, device.device_id, 3)).json()
    second = (await _ask(client, device.device_id, 3)).json()
    stale = await _send(client, device, _batch(1, 2))
    batch = _batch(2, 2)
    sent = await _send(client, device, batch)
    again = await _send(client, device, batch)
    beyond = await _send(client, device, _batch(2, 2, first=2))
    rest = await _send(client, device, _batch(2, 1, first=2))

    assert unasked.status_code == 403 and "asks for none" in unasked.json()["detail"]
    assert first["send_windows"] == {"request_id": 1, "count": 3}
    assert second["send_windows"]["request_id"] == 2 and second["version"] == first["version"] + 1
    assert stale.status_code == 403 and "request 1" in stale.json()["detail"]
    assert sent.json()["accepted"] == 2 and again.json()["duplicate"] is True
    assert beyond.status_code == 403 and "asked device 'motor-1' for 3" in beyond.json()["detail"]
    assert rest.json()["accepted"] == 1
    assert count(hub, ReviewWindowRow) == 3


async def test_labelled_windows_become_samples_of_the_dataset_once(
    client: httpx.AsyncClient, hub: HubContext, device: Device, enrol: Enrol
) -> None:
    other = await enrol("motor-2")
    for who in (device, other):
        await _ask(client, who.device_id, 5)
        await _send(client, who, _batch(1, 3))
    listed = (await client.get("/api/v1/windows?labelled=false", headers=ADMIN)).json()
    mine = [w["id"] for w in listed if w["device_id"] == "motor-1"]
    body = {"ids": [*mine[:2], listed[-1]["id"]], "label": "worn", "dataset": "review"}

    labelled = await client.post("/api/v1/windows/label", json=body, headers=ADMIN)
    relabelled = await client.post(
        "/api/v1/windows/label", json={**body, "label": "normal"}, headers=ADMIN
    )
    unknown = await client.post(
        "/api/v1/windows/label", json={**body, "ids": [mine[2], 999]}, headers=ADMIN
    )
    left = (await client.get("/api/v1/windows?labelled=false", headers=ADMIN)).json()
    samples = DatasetView.model_validate_json(
        (await client.get("/api/v1/samples", headers=ADMIN)).content
    ).samples

    assert len(listed) == 6 and listed[0]["predicted"] == "normal"
    assert labelled.json() == {"labelled": 3, "samples": 3}
    assert relabelled.json() == {"labelled": 0, "samples": 0}
    assert unknown.status_code == 404 and "no window 999" in unknown.json()["detail"]
    assert sorted(w["id"] for w in left) == sorted(set(w["id"] for w in listed) - set(body["ids"]))
    assert sorted((s.device_id, s.label, s.features[0]) for s in samples) == [
        ("motor-1", "worn", 0.0),
        ("motor-1", "worn", 1.0),
        ("motor-2", "worn", 2.0),
    ]
    assert count(hub, SampleRow) == 3


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/api/v1/devices/motor-1/window-requests", {"count": 0}, "count"),
        ("/api/v1/devices/motor-1/window-requests", {"count": 1001}, "count"),
        ("/api/v1/devices/nobody/window-requests", {"count": 1}, "nobody"),
        ("/api/v1/windows/label", {"ids": [], "label": "worn", "dataset": "d"}, "ids"),
        ("/api/v1/windows/label", {"ids": [1], "label": " worn", "dataset": "d"}, "label"),
    ],
)
async def test_bad_review_requests_are_refused_naming_the_field(
    client: httpx.AsyncClient, device: Device, path: str, body: dict[str, object], says: str
) -> None:
    response = await client.post(path, json=body, headers=ADMIN)

    assert 400 <= response.status_code < 500 and says in response.text
