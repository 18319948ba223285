"""Protocol versions: messages recorded under protocol 1 still go through the real API and
parse on the agent's side, unknown fields are ignored, and a version outside the range the
hub speaks is refused with that range, which the agent's link tells from other refusals."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from edgestack.agent import link as agent_link
from edgestack.agent.link import HubLink, HubRejected, ProtocolRefused
from edgestack.protocol import (
    OLDEST_PROTOCOL,
    PROTOCOL,
    PROTOCOL_HEADER,
    DesiredState,
    EnrolRequest,
    EnrolResponse,
)

from .factories import ADMIN, ENROL_TOKEN, HARDWARE, Device

pytestmark = pytest.mark.anyio

V1 = Path(__file__).parents[1] / "wire" / "v1"


def _v1(name: str, **changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads((V1 / f"{name}.json").read_text())
    return {**message, **changes}


async def _enrol_v1(client: httpx.AsyncClient, **changes: Any) -> Device:
    body = _v1("enrol_request", enrol_token=ENROL_TOKEN, **changes)
    response = await client.post("/api/v1/enrol", json=body)
    assert response.status_code == 200, response.text
    return Device(
        body["device_id"], EnrolResponse.model_validate_json(response.content).device_token
    )


async def test_a_device_of_protocol_1_without_the_header_goes_through_every_call(
    client: httpx.AsyncClient,
) -> None:
    device = await _enrol_v1(client)
    collect = _v1("desired_state")["collect"]
    await client.patch("/api/v1/devices/motor-1/desired", json={"collect": collect}, headers=ADMIN)

    answers = {
        path: await client.request(
            method, f"/api/v1/devices/motor-1/{path}", json=_v1(name), headers=device.auth
        )
        for method, path, name in (
            ("PUT", "reported", "reported_state"),
            ("POST", "telemetry", "telemetry_batch"),
            ("POST", "events", "event_batch"),
            ("POST", "samples", "sample_batch"),
        )
    }
    desired = await client.get("/api/v1/devices/motor-1/desired", headers=device.auth)

    assert {path: a.status_code for path, a in answers.items()} == dict.fromkeys(answers, 200)
    assert answers["samples"].json()["accepted"] == 3
    assert DesiredState.model_validate_json(desired.content).collect is not None
    view = (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json()
    assert view["telemetry"]["windows"] == 12
    assert view["reported"]["status"] == "collecting"


def test_hub_to_agent_messages_of_protocol_1_parse_on_the_agent() -> None:
    desired = DesiredState.model_validate(_v1("desired_state"))
    enrolled = EnrolResponse.model_validate(_v1("enrol_response"))

    assert desired.version == 4
    assert desired.bundle is not None and desired.bundle.version == 3
    assert desired.collect is not None and desired.collect.dataset == "motors"
    assert enrolled.device_id == "motor-1"


async def test_fields_a_reader_does_not_know_are_ignored_on_both_sides(
    client: httpx.AsyncClient,
) -> None:
    device = await _enrol_v1(client, from_a_later_release={"any": "thing"})
    telemetry = _v1("telemetry_batch", from_a_later_release=[1, 2])

    stored = await client.post(
        "/api/v1/devices/motor-1/telemetry", json=telemetry, headers=device.auth
    )
    desired = DesiredState.model_validate(_v1("desired_state", from_a_later_release=True))

    assert stored.status_code == 200
    assert desired.version == 4


@pytest.mark.parametrize("stated", [str(OLDEST_PROTOCOL), str(PROTOCOL)])
async def test_every_version_in_the_range_is_spoken(client: httpx.AsyncClient, stated: str) -> None:
    response = await client.get("/api/v1/devices", headers={**ADMIN, PROTOCOL_HEADER: stated})

    assert response.status_code == 200


@pytest.mark.parametrize("stated", [str(PROTOCOL + 1), "0", "two", "²".encode(), "9" * 20])
async def test_a_version_outside_the_range_is_refused_naming_the_range(
    client: httpx.AsyncClient, stated: str | bytes
) -> None:
    response = await client.get("/api/v1/devices", headers={**ADMIN, PROTOCOL_HEADER: stated})

    assert response.status_code in (400, 422)
    assert PROTOCOL_HEADER in response.json()["detail"]
    if response.status_code == 400:
        assert response.headers[PROTOCOL_HEADER] == f"{OLDEST_PROTOCOL}-{PROTOCOL}"
        assert f"speaks protocols {OLDEST_PROTOCOL} to {PROTOCOL}" in response.json()["detail"]


async def test_the_agent_link_tells_a_refused_protocol_from_other_refusals(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = EnrolRequest(device_id="motor-1", enrol_token=ENROL_TOKEN, hardware=HARDWARE)
    wrong_token = request.model_copy(update={"enrol_token": "guess"})
    current = HubLink("http://hub", transport=httpx.ASGITransport(app))
    monkeypatch.setattr(agent_link, "PROTOCOL", PROTOCOL + 1)
    future = HubLink("http://hub", transport=httpx.ASGITransport(app))

    with pytest.raises(HubRejected) as refused:
        await current.enrol(wrong_token)
    with pytest.raises(ProtocolRefused) as unspoken:
        await future.enrol(request)
    enrolled = await current.enrol(request)

    assert not isinstance(refused.value, ProtocolRefused)
    assert f"protocol {PROTOCOL + 1} is not spoken" in unspoken.value.detail
    assert enrolled.device_id == "motor-1"
    await current.aclose()
    await future.aclose()
