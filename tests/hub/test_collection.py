"""A collection is refused up front when the device feeds other sensors than the dataset's
samples were taken of."""

import uuid

import httpx
import pytest

from edgestack.protocol import DesiredState, Feeds, SampleImport

from .factories import ADMIN, FEEDS, SPEC, Ready, sample_batch

pytestmark = pytest.mark.anyio

IMU = Feeds(sensors=["accel_x", "accel_y", "accel_z"], rate_hz=100, extractors=["time_stats"])


async def _motors(client: httpx.AsyncClient) -> None:
    rows = sample_batch(2, 2).samples
    body = SampleImport(batch_id=uuid.uuid4(), spec=SPEC, samples=rows).model_dump_json()
    response = await client.post("/api/v1/datasets/motors/samples", content=body, headers=ADMIN)
    assert response.status_code == 200, response.text


async def _collect(client: httpx.AsyncClient, device_id: str, dataset: str) -> httpx.Response:
    body = {"collect": {"label": "normal", "dataset": dataset}}
    return await client.patch(f"/api/v1/devices/{device_id}/desired", json=body, headers=ADMIN)


async def _desired(client: httpx.AsyncClient, device_id: str) -> DesiredState:
    response = await client.get(f"/api/v1/devices/{device_id}", headers=ADMIN)
    return DesiredState.model_validate(response.json()["desired"])


async def test_a_device_feeding_other_sensors_is_not_asked_to_collect_into_the_dataset(
    client: httpx.AsyncClient, ready: Ready
) -> None:
    await ready("imu-1", feeds=IMU)
    await _motors(client)
    before = await _desired(client, "imu-1")

    refused = await _collect(client, "imu-1", "motors")
    elsewhere = await _collect(client, "imu-1", "imus")

    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "device 'imu-1' feeds sensors accel_x, accel_y, accel_z at 100 Hz" in detail
    assert f"spec {SPEC.fingerprint()}: sensors vib_x, vib_y at 400 Hz" in detail
    assert elsewhere.status_code == 200, elsewhere.text
    after = await _desired(client, "imu-1")
    assert before.collect is None
    assert after.collect is not None and after.collect.dataset == "imus"
    assert after.version == before.version + 1


@pytest.mark.parametrize(
    ("feeds", "status"),
    [(FEEDS, 200), (None, 200), (FEEDS.model_copy(update={"rate_hz": 800.0}), 409)],
)
async def test_a_device_feeding_the_datasets_sensors_or_not_saying_may_collect_at_their_rate(
    client: httpx.AsyncClient, ready: Ready, feeds: Feeds | None, status: int
) -> None:
    await ready("motor-1", feeds=feeds)
    await _motors(client)

    response = await _collect(client, "motor-1", "motors")

    assert response.status_code == status, response.text
