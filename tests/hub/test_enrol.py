import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import DeviceRow
from edgestack.protocol import PROTOCOL, DesiredState, DeviceView

from .factories import ADMIN, ENROL_TOKEN, HARDWARE, Enrol, count

pytestmark = pytest.mark.anyio


def _enrolment(device_id: str = "motor-1", **changes: object) -> dict[str, object]:
    return {
        "device_id": device_id,
        "enrol_token": ENROL_TOKEN,
        "hardware": HARDWARE.model_dump(),
        **changes,
    }


async def test_enrol_creates_the_device_with_a_default_twin(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/enrol", json=_enrolment())

    assert response.status_code == 200
    assert response.json()["device_id"] == "motor-1"
    assert len(response.json()["device_token"]) >= 32
    view = DeviceView.model_validate_json(
        (await client.get("/v1/devices/motor-1", headers=ADMIN)).content
    )
    assert view.desired == DesiredState()
    assert view.reported is None
    assert view.last_seen is not None


async def test_enrol_with_a_wrong_token_is_refused_and_creates_nothing(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    response = await client.post("/v1/enrol", json=_enrolment(enrol_token="guess"))

    assert response.status_code == 401
    assert "enrol_token" in response.json()["detail"]
    assert "EDGESTACK_ENROL_TOKEN" in response.json()["detail"]
    assert count(hub, DeviceRow) == 0


async def test_enrol_with_another_protocol_names_the_one_spoken(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    response = await client.post("/v1/enrol", json=_enrolment(protocol=PROTOCOL + 1))

    assert response.status_code == 400
    assert f"protocol {PROTOCOL + 1}" in response.json()["detail"]
    assert f"speaks protocol {PROTOCOL}" in response.json()["detail"]
    assert count(hub, DeviceRow) == 0


async def test_enrolling_again_rotates_the_token_and_keeps_the_desired_state(
    client: httpx.AsyncClient, enrol: Enrol
) -> None:
    first = await enrol("motor-1")
    patched = await client.patch(
        "/v1/devices/motor-1/desired", json={"telemetry_interval_s": 1.0}, headers=ADMIN
    )

    second = await enrol("motor-1")

    assert second.token != first.token
    old = await client.get("/v1/devices/motor-1/desired", headers=first.auth)
    new = await client.get("/v1/devices/motor-1/desired", headers=second.auth)
    assert old.status_code == 401
    assert new.status_code == 200
    assert DesiredState.model_validate_json(new.content) == DesiredState.model_validate_json(
        patched.content
    )
    assert new.json()["telemetry_interval_s"] == 1.0


async def test_enrol_with_a_bad_device_id_names_the_field(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    response = await client.post("/v1/enrol", json=_enrolment(device_id="Motor 1"))

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.device_id: String should match pattern")
    assert count(hub, DeviceRow) == 0
