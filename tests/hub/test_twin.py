import asyncio
import time

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from edgestack.hub.context import HubContext
from edgestack.protocol import (
    PROTOCOL,
    PROTOCOL_HEADER,
    BundleRef,
    Collection,
    DesiredState,
    DeviceView,
    FaultInjection,
    ReportedState,
    RuleParams,
)

from .factories import ADMIN, HARDWARE, Device, wait_until

pytestmark = pytest.mark.anyio


async def test_long_poll_answers_at_once_when_the_device_is_behind(
    client: httpx.AsyncClient, device: Device
) -> None:
    await client.patch(
        "/api/v1/devices/motor-1/desired", json={"fault": {"kind": "wear"}}, headers=ADMIN
    )
    started = time.monotonic()

    response = await client.get(
        "/api/v1/devices/motor-1/desired", params={"after": 0, "wait": 30}, headers=device.auth
    )

    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert response.json()["fault"] == {"kind": "wear", "severity": 1.0}
    assert time.monotonic() - started < 5


async def test_long_poll_answers_when_the_desired_state_changes(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    poll = asyncio.create_task(
        client.get(
            "/api/v1/devices/motor-1/desired", params={"after": 0, "wait": 30}, headers=device.auth
        )
    )
    await wait_until(lambda: hub.notifier.watching("motor-1"))
    started = time.monotonic()

    patched = await client.patch(
        "/api/v1/devices/motor-1/desired", json={"collect": {"label": "normal"}}, headers=ADMIN
    )
    response = await asyncio.wait_for(poll, timeout=10)

    assert patched.status_code == 200
    assert response.status_code == 200
    assert DesiredState.model_validate_json(response.content) == DesiredState.model_validate_json(
        patched.content
    )
    assert response.json()["version"] == 1
    assert time.monotonic() - started < 5


async def test_long_poll_times_out_with_the_same_version(
    client: httpx.AsyncClient, device: Device
) -> None:
    started = time.monotonic()

    response = await client.get(
        "/api/v1/devices/motor-1/desired", params={"after": 0, "wait": 0.2}, headers=device.auth
    )

    assert response.status_code == 200
    assert DesiredState.model_validate_json(response.content) == DesiredState()
    assert time.monotonic() - started >= 0.2


async def test_long_poll_answers_at_once_when_the_device_is_ahead_of_the_hub(
    client: httpx.AsyncClient, device: Device
) -> None:
    response = await client.get(
        "/api/v1/devices/motor-1/desired", params={"after": 7, "wait": 30}, headers=device.auth
    )

    assert response.json()["version"] == 0


async def test_long_poll_wait_is_bounded(client: httpx.AsyncClient, device: Device) -> None:
    response = await client.get(
        "/api/v1/devices/motor-1/desired", params={"after": 0, "wait": 61}, headers=device.auth
    )

    assert response.status_code == 422
    assert response.json()["detail"] == "query.wait: Input should be less than or equal to 60"


async def test_patch_changes_only_the_fields_given_and_null_clears(
    client: httpx.AsyncClient, device: Device
) -> None:
    first = await client.patch(
        "/api/v1/devices/motor-1/desired",
        json={"collect": {"label": "worn"}, "rules": {"trigger_windows": 2}},
        headers=ADMIN,
    )

    second = await client.patch(
        "/api/v1/devices/motor-1/desired", json={"collect": None, "rules": None}, headers=ADMIN
    )
    third = await client.patch(
        "/api/v1/devices/motor-1/desired", json={"telemetry_interval_s": 0.5}, headers=ADMIN
    )

    assert first.json()["collect"] == {"label": "worn", "dataset": "default"}
    assert first.json()["rules"]["trigger_windows"] == 2
    assert second.json()["version"] == 2
    assert second.json()["collect"] is None
    assert second.json()["rules"] is None
    assert third.json() == {**second.json(), "version": 3, "telemetry_interval_s": 0.5}


async def test_patch_of_an_unknown_device_is_404(client: httpx.AsyncClient) -> None:
    response = await client.patch("/api/v1/devices/ghost/desired", json={}, headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["detail"] == (
        "device 'ghost' is not enrolled; enrol it with POST /api/v1/enrol"
    )


async def test_patch_with_a_bad_field_names_it_and_keeps_the_state(
    client: httpx.AsyncClient, device: Device
) -> None:
    response = await client.patch(
        "/api/v1/devices/motor-1/desired", json={"telemetry_interval_s": 0}, headers=ADMIN
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.telemetry_interval_s: ")
    view = await client.get("/api/v1/devices/motor-1", headers=ADMIN)
    assert view.json()["desired"]["version"] == 0


async def test_reported_state_is_stored_and_shown(
    client: httpx.AsyncClient, device: Device
) -> None:
    reported = ReportedState(desired_version=0, status="idle", hardware=HARDWARE)

    response = await client.put(
        "/api/v1/devices/motor-1/reported", content=reported.model_dump_json(), headers=device.auth
    )

    assert response.status_code == 200
    assert ReportedState.model_validate_json(response.content) == reported
    view = DeviceView.model_validate_json(
        (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).content
    )
    assert view.reported == reported


class _DesiredOfTheLastRelease(BaseModel):
    """`DesiredState` as agents of the previous release read it: `rules` never null, and no
    field it does not know (its `Wire` refused them)."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(default=0, ge=0)
    bundle: BundleRef | None = None
    rules: RuleParams = RuleParams()
    collect: Collection | None = None
    fault: FaultInjection | None = None
    telemetry_interval_s: float = Field(default=5.0, ge=0.2, le=3600)
    profile: str | None = None


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"collect": {"label": "Worn Bearing"}}, "collect.label"),
        ({"collect": {"label": "worn", "dataset": "Bearing Set"}}, "collect.dataset"),
        ({"rules": {"normal_label": "Calm"}}, "rules.normal_label"),
    ],
)
async def test_a_name_agents_of_protocol_2_cannot_read_is_not_sent_to_devices(
    client: httpx.AsyncClient, device: Device, patch: dict[str, object], field: str
) -> None:
    # Data sets and labels keep names as written, but what a device is sent stays a slug:
    # agents of the previous protocol refuse a desired state holding anything else.
    response = await client.patch("/api/v1/devices/motor-1/desired", json=patch, headers=ADMIN)

    assert response.status_code == 422, response.text
    assert field in response.text


@pytest.mark.parametrize("rules", [None, {"normal_label": "calm", "trigger_windows": 2}])
async def test_an_agent_of_the_last_release_still_reads_its_desired_state(
    client: httpx.AsyncClient, device: Device, rules: dict[str, object] | None
) -> None:
    await client.patch(
        "/api/v1/devices/motor-1/desired",
        json={"collect": {"label": "worn"}, "rules": rules},
        headers=ADMIN,
    )

    response = await client.get("/api/v1/devices/motor-1/desired", headers=device.auth)
    old = _DesiredOfTheLastRelease.model_validate_json(response.content)
    new = DesiredState.model_validate_json(response.content)

    assert old.collect == new.collect == Collection(label="worn")
    assert new.rules == (None if rules is None else RuleParams.model_validate(rules))
    assert old.rules == (new.rules or RuleParams())


async def test_fields_since_protocol_2_reach_only_agents_that_speak_it(
    client: httpx.AsyncClient, device: Device
) -> None:
    fault = {"kind": "imbalance", "noise": 4.0}
    await client.patch(
        "/api/v1/devices/motor-1/desired", json={"fault": fault, "stopped": True}, headers=ADMIN
    )
    await client.post("/api/v1/devices/motor-1/window-requests", json={"count": 5}, headers=ADMIN)

    old = await client.get("/api/v1/devices/motor-1/desired", headers=device.auth)
    new = await client.get(
        "/api/v1/devices/motor-1/desired", headers={**device.auth, PROTOCOL_HEADER: str(PROTOCOL)}
    )

    last_release = _DesiredOfTheLastRelease.model_validate_json(old.content)
    assert last_release.fault == FaultInjection(kind="imbalance")
    assert not {"send_windows", "keep", "stopped"} & set(old.json())
    current = DesiredState.model_validate_json(new.content)
    assert current.fault is not None and current.fault.noise == 4.0
    assert current.send_windows is not None and current.send_windows.count == 5
    assert current.stopped
