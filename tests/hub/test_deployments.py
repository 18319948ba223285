import asyncio
from typing import Any

import httpx
import pytest

from edgestack.bundle import Footprint
from edgestack.hub.context import HubContext
from edgestack.protocol import Feeds

from .factories import ADMIN, Device, Enrol, Ready, packed_bundle, wait_until

pytestmark = pytest.mark.anyio

RAW = {**ADMIN, "Content-Type": "application/octet-stream"}
# 4 ms p99 on the reference machine: 24 ms on a pi (budget 20), 6 ms on an ipc (budget 10).
SLOW_ON_A_PI = Footprint(
    model_bytes=200_000, peak_ram_bytes=4_000_000, latency_ms_p50=2, latency_ms_p99=4
)
PI_REFUSAL = (
    "(profile pi) model takes about 24.00 ms per window (p99) on pi, the budget is 20.00 ms"
)


@pytest.fixture
async def device(ready: Ready) -> Device:
    return await ready("motor-1")


async def _register(
    client: httpx.AsyncClient, version: int, footprint: Footprint | None = None
) -> str:
    data = packed_bundle("motor", version, model=f"model v{version}".encode(), footprint=footprint)
    response = await client.post("/api/v1/models", content=data, headers=RAW)
    assert response.status_code == 201, response.text
    assert response.json()["version"] == version
    digest: str = response.json()["digest"]
    return digest


async def test_deploy_sets_the_latest_bundle_on_every_device(
    client: httpx.AsyncClient, device: Device, ready: Ready
) -> None:
    await ready("motor-2")
    await _register(client, 1)
    latest = await _register(client, 2)

    response = await client.post(
        "/api/v1/deployments", json={"model": "motor", "all": True}, headers=ADMIN
    )

    assert response.status_code == 200
    ref = {"name": "motor", "version": 2, "digest": latest}
    assert response.json() == {"bundle": ref, "devices": ["motor-1", "motor-2"]}
    for view in (await client.get("/api/v1/devices", headers=ADMIN)).json():
        assert view["desired"]["bundle"] == ref
        assert view["desired"]["version"] == 1


async def test_deploy_to_named_devices_at_a_version_wakes_their_long_polls(
    client: httpx.AsyncClient, hub: HubContext, device: Device, ready: Ready
) -> None:
    await ready("motor-2")
    first = await _register(client, 1)
    await _register(client, 2)
    poll = asyncio.create_task(
        client.get(
            "/api/v1/devices/motor-1/desired", params={"after": 0, "wait": 30}, headers=device.auth
        )
    )
    await wait_until(lambda: hub.notifier.watching("motor-1"))

    response = await client.post(
        "/api/v1/deployments",
        json={"model": "motor", "version": 1, "devices": ["motor-1"]},
        headers=ADMIN,
    )
    woken = await asyncio.wait_for(poll, timeout=10)

    assert response.json()["devices"] == ["motor-1"]
    assert woken.json()["bundle"] == {"name": "motor", "version": 1, "digest": first}
    other = await client.get("/api/v1/devices/motor-2", headers=ADMIN)
    assert other.json()["desired"]["bundle"] is None


@pytest.mark.parametrize(
    ("request_body", "detail"),
    [
        (
            {"model": "pump", "all": True},
            "model 'pump' is not registered; register it with POST /api/v1/models",
        ),
        (
            {"model": "motor", "version": 3, "all": True},
            "model 'motor' has no version 3; registered versions: 1",
        ),
        (
            {"model": "motor", "devices": ["motor-1", "ghost"]},
            "devices not enrolled: ghost; enrol them with POST /api/v1/enrol or leave them out of "
            "devices",
        ),
    ],
)
async def test_deploy_of_something_unknown_is_404_and_changes_nothing(
    client: httpx.AsyncClient, device: Device, request_body: dict[str, object], detail: str
) -> None:
    await _register(client, 1)

    response = await client.post("/api/v1/deployments", json=request_body, headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["detail"] == detail
    view = await client.get("/api/v1/devices/motor-1", headers=ADMIN)
    assert view.json()["desired"]["version"] == 0


async def _desired(client: httpx.AsyncClient) -> dict[str, Any]:
    views = (await client.get("/api/v1/devices", headers=ADMIN)).json()
    return {view["device_id"]: view["desired"] for view in views}


async def _set_profile(client: httpx.AsyncClient, device_id: str, profile: str | None) -> None:
    response = await client.patch(
        f"/api/v1/devices/{device_id}/desired", json={"profile": profile}, headers=ADMIN
    )
    assert response.status_code == 200, response.text


async def test_a_bundle_that_fits_every_profile_deploys(
    client: httpx.AsyncClient, device: Device
) -> None:
    fits = SLOW_ON_A_PI.model_copy(update={"latency_ms_p99": 1.0})
    ref = await _register(client, 1, fits)

    response = await client.post(
        "/api/v1/deployments", json={"model": "motor", "all": True}, headers=ADMIN
    )

    assert response.status_code == 200, response.text
    assert (await _desired(client))["motor-1"]["bundle"]["digest"] == ref


async def test_a_bundle_too_slow_for_one_device_is_refused_for_all_naming_why(
    client: httpx.AsyncClient, device: Device, ready: Ready
) -> None:
    await ready("motor-2")
    await ready("motor-3")
    await _set_profile(client, "motor-2", "ipc")
    await _register(client, 1, SLOW_ON_A_PI)
    before = await _desired(client)

    response = await client.post(
        "/api/v1/deployments", json={"model": "motor", "all": True}, headers=ADMIN
    )

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"model 'motor' version 1 cannot run on 2 of 3 devices: motor-1: {PI_REFUSAL} | "
        f"motor-3: {PI_REFUSAL}; deploy a version they can run, set the devices' profile in "
        "their desired state if it is wrong, or set force (edgestack deploy --force) to "
        "deploy anyway"
    )
    assert await _desired(client) == before


async def test_force_deploys_where_the_bundle_does_not_fit(
    client: httpx.AsyncClient, device: Device
) -> None:
    ref = await _register(client, 1, SLOW_ON_A_PI)

    response = await client.post(
        "/api/v1/deployments", json={"model": "motor", "all": True, "force": True}, headers=ADMIN
    )

    assert response.status_code == 200, response.text
    assert (await _desired(client))["motor-1"]["bundle"]["digest"] == ref


async def test_the_profile_in_the_desired_state_decides_the_verdict(
    client: httpx.AsyncClient, device: Device
) -> None:
    await _register(client, 1, SLOW_ON_A_PI)
    deploy = {"model": "motor", "devices": ["motor-1"]}
    refused = await client.post("/api/v1/deployments", json=deploy, headers=ADMIN)

    await _set_profile(client, "motor-1", "ipc")
    accepted = await client.post("/api/v1/deployments", json=deploy, headers=ADMIN)

    assert refused.status_code == 409
    assert accepted.status_code == 200, accepted.text


async def test_a_bundle_never_measured_deploys_to_any_profile(
    client: httpx.AsyncClient, device: Device
) -> None:
    await _set_profile(client, "motor-1", "mcu")
    await _register(client, 1, footprint=None)

    response = await client.post(
        "/api/v1/deployments", json={"model": "motor", "all": True}, headers=ADMIN
    )

    assert response.status_code == 200, response.text


async def test_a_c_bundle_deploys_to_mcu_devices_only_and_a_big_onnx_model_to_none(
    client: httpx.AsyncClient, device: Device, ready: Ready
) -> None:
    await ready("motor-2")  # a pi
    await _set_profile(client, "motor-1", "mcu")
    small = Footprint(
        model_bytes=30_000, peak_ram_bytes=9_000, latency_ms_p50=0.01, latency_ms_p99=0.01
    )
    big = SLOW_ON_A_PI.model_copy(update={"model_bytes": 10 * 1024 * 1024, "latency_ms_p99": 1})
    for version, footprint, target in ((1, big, "onnx"), (2, small, "c")):
        data = packed_bundle("motor", version, model=b"model", footprint=footprint, target=target)
        response = await client.post("/api/v1/models", content=data, headers=RAW)
        assert response.status_code == 201, response.text

    def deploy(version: int, devices: list[str]) -> Any:
        body = {"model": "motor", "version": version, "devices": devices}
        return client.post("/api/v1/deployments", json=body, headers=ADMIN)

    onnx_to_mcu = await deploy(1, ["motor-1"])
    c_to_both = await deploy(2, ["motor-1", "motor-2"])
    c_to_mcu = await deploy(2, ["motor-1"])

    assert onnx_to_mcu.status_code == 409
    assert (
        "motor-1: (profile mcu) model is 10.00 MB, profile mcu holds 1.00 MB"
        in (onnx_to_mcu.json()["detail"])
    )
    assert c_to_both.status_code == 409
    assert c_to_both.json()["detail"].startswith(
        "model 'motor' version 2 cannot run on 1 of 2 devices: motor-2: the bundle is C source "
        "for the mcu profile and profile pi runs ONNX models through its agent"
    )
    assert c_to_mcu.status_code == 200, c_to_mcu.text
    assert (await _desired(client))["motor-1"]["bundle"]["version"] == 2


@pytest.mark.parametrize(
    ("targets", "detail"),
    [
        ({}, "none was given"),
        ({"devices": ["motor-1"], "all": True}, "only one, not devices and all"),
        ({"devices": ["motor-1"], "to": ["tag:site=a"]}, "only one, not devices and to"),
        ({"devices": []}, "devices: the list is empty"),
        ({"to": []}, "to: the list is empty"),
    ],
)
async def test_a_deployment_must_name_its_targets_or_all_else_422(
    client: httpx.AsyncClient, device: Device, targets: dict[str, object], detail: str
) -> None:
    await _register(client, 1)

    response = await client.post(
        "/api/v1/deployments", json={"model": "motor", **targets}, headers=ADMIN
    )

    assert response.status_code == 422
    assert detail in response.json()["detail"]
    assert "--all" in response.json()["detail"]
    assert (await _desired(client))["motor-1"]["version"] == 0


async def test_a_device_that_cannot_feed_the_model_is_refused_for_all_naming_why(
    client: httpx.AsyncClient, device: Device, ready: Ready
) -> None:
    imu = Feeds(sensors=["accel_x", "accel_y", "accel_z"], rate_hz=100, extractors=["fft_bands"])
    await ready("imu-1", imu)
    await _register(client, 1)
    before = await _desired(client)

    refused = await client.post(
        "/api/v1/deployments", json={"model": "motor", "all": True}, headers=ADMIN
    )
    forced = await client.post(
        "/api/v1/deployments", json={"model": "motor", "all": True, "force": True}, headers=ADMIN
    )

    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(
        "model 'motor' version 1 cannot run on 1 of 2 devices: imu-1: model needs sensors "
        "vib_x, vib_y, the device feeds accel_x, accel_y, accel_z; model needs 400 Hz, the "
        "device samples at 100 Hz; model needs feature extractors the device lacks: time_stats;"
    )
    assert before["motor-1"]["version"] == before["imu-1"]["version"] == 0
    assert forced.status_code == 200, forced.text
    assert forced.json()["devices"] == ["imu-1", "motor-1"]


async def test_a_device_that_never_reported_what_it_feeds_is_a_misfit_unless_forced(
    client: httpx.AsyncClient, enrol: Enrol
) -> None:
    await enrol("silent-1")
    await _register(client, 1)
    deploy = {"model": "motor", "devices": ["silent-1"]}

    refused = await client.post("/api/v1/deployments", json=deploy, headers=ADMIN)
    forced = await client.post("/api/v1/deployments", json={**deploy, "force": True}, headers=ADMIN)

    assert refused.status_code == 409
    assert "silent-1: it has not reported what it can feed a model" in refused.json()["detail"]
    assert forced.status_code == 200, forced.text


async def test_undeploy_leaves_the_chosen_devices_without_a_model_and_wakes_them(
    client: httpx.AsyncClient, device: Device, ready: Ready
) -> None:
    await ready("motor-2")
    await _register(client, 1)
    await client.post("/api/v1/deployments", json={"model": "motor", "all": True}, headers=ADMIN)
    waiting = asyncio.create_task(
        client.get("/api/v1/devices/motor-1/desired?after=1&wait=30", headers=device.auth)
    )
    await asyncio.sleep(0.1)

    undone = await client.post(
        "/api/v1/undeployments", json={"devices": ["motor-1"]}, headers=ADMIN
    )
    woken = await asyncio.wait_for(waiting, 5)
    neither = await client.post("/api/v1/undeployments", json={}, headers=ADMIN)
    desired = await _desired(client)

    assert undone.status_code == 200 and undone.json() == {"devices": ["motor-1"]}
    assert woken.json()["version"] == 2 and "bundle" not in woken.json()
    assert desired["motor-1"].get("bundle") is None
    assert desired["motor-2"]["bundle"]["version"] == 1
    assert neither.status_code == 422 and "edgestack undeploy --all" in neither.json()["detail"]
