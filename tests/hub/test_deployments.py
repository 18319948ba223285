import asyncio

import httpx
import pytest

from edgestack.bundle import digest
from edgestack.hub.context import HubContext

from .factories import ADMIN, Device, Enrol, packed_bundle, wait_until

pytestmark = pytest.mark.anyio

RAW = {**ADMIN, "Content-Type": "application/octet-stream"}


async def _register(client: httpx.AsyncClient, version: int) -> str:
    data = packed_bundle("motor", version, model=f"model v{version}".encode())
    response = await client.post("/v1/models", content=data, headers=RAW)
    assert response.status_code == 201, response.text
    return digest(data)


async def test_deploy_sets_the_latest_bundle_on_every_device(
    client: httpx.AsyncClient, device: Device, enrol: Enrol
) -> None:
    await enrol("motor-2")
    await _register(client, 1)
    latest = await _register(client, 2)

    response = await client.post("/v1/deployments", json={"model": "motor"}, headers=ADMIN)

    assert response.status_code == 200
    ref = {"name": "motor", "version": 2, "digest": latest}
    assert response.json() == {"bundle": ref, "devices": ["motor-1", "motor-2"]}
    for view in (await client.get("/v1/devices", headers=ADMIN)).json():
        assert view["desired"]["bundle"] == ref
        assert view["desired"]["version"] == 1


async def test_deploy_to_named_devices_at_a_version_wakes_their_long_polls(
    client: httpx.AsyncClient, hub: HubContext, device: Device, enrol: Enrol
) -> None:
    await enrol("motor-2")
    first = await _register(client, 1)
    await _register(client, 2)
    poll = asyncio.create_task(
        client.get(
            "/v1/devices/motor-1/desired", params={"after": 0, "wait": 30}, headers=device.auth
        )
    )
    await wait_until(lambda: hub.notifier.watching("motor-1"))

    response = await client.post(
        "/v1/deployments",
        json={"model": "motor", "version": 1, "devices": ["motor-1"]},
        headers=ADMIN,
    )
    woken = await asyncio.wait_for(poll, timeout=10)

    assert response.json()["devices"] == ["motor-1"]
    assert woken.json()["bundle"] == {"name": "motor", "version": 1, "digest": first}
    other = await client.get("/v1/devices/motor-2", headers=ADMIN)
    assert other.json()["desired"]["bundle"] is None


@pytest.mark.parametrize(
    ("request_body", "detail"),
    [
        (
            {"model": "pump"},
            "model 'pump' is not registered; register it with POST /v1/models",
        ),
        (
            {"model": "motor", "version": 3},
            "model 'motor' has no version 3; registered versions: 1",
        ),
        (
            {"model": "motor", "devices": ["motor-1", "ghost"]},
            "devices not enrolled: ghost; enrol them with POST /v1/enrol or leave them out of "
            "devices",
        ),
    ],
)
async def test_deploy_of_something_unknown_is_404_and_changes_nothing(
    client: httpx.AsyncClient, device: Device, request_body: dict[str, object], detail: str
) -> None:
    await _register(client, 1)

    response = await client.post("/v1/deployments", json=request_body, headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["detail"] == detail
    view = await client.get("/v1/devices/motor-1", headers=ADMIN)
    assert view.json()["desired"]["version"] == 0
