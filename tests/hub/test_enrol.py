import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import DeviceRow
from edgestack.protocol import PROTOCOL, DesiredState, DeviceView, EventView

from .factories import ADMIN, ENROL_TOKEN, HARDWARE, Device, Enrol, count, event_batch

pytestmark = pytest.mark.anyio


def _enrolment(device_id: str = "motor-1", **changes: object) -> dict[str, object]:
    return {
        "device_id": device_id,
        "enrol_token": ENROL_TOKEN,
        "hardware": HARDWARE.model_dump(),
        **changes,
    }


async def test_enrol_creates_the_device_with_a_default_twin(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/enrol", json=_enrolment())

    assert response.status_code == 200
    assert response.json()["device_id"] == "motor-1"
    assert len(response.json()["device_token"]) >= 32
    view = DeviceView.model_validate_json(
        (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).content
    )
    assert view.desired == DesiredState()
    assert view.reported is None
    assert view.last_seen is not None


async def test_enrol_with_a_wrong_token_is_refused_and_creates_nothing(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    response = await client.post("/api/v1/enrol", json=_enrolment(enrol_token="guess"))

    assert response.status_code == 401
    assert "enrol_token" in response.json()["detail"]
    assert "EDGESTACK_ENROL_TOKEN" in response.json()["detail"]
    assert count(hub, DeviceRow) == 0


async def test_enrol_with_another_protocol_names_the_one_spoken(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    response = await client.post("/api/v1/enrol", json=_enrolment(protocol=PROTOCOL + 1))

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"body.protocol: protocol {PROTOCOL + 1}")
    assert f"speaks protocols 1 to {PROTOCOL}" in response.json()["detail"]
    assert count(hub, DeviceRow) == 0


async def _events(client: httpx.AsyncClient) -> list[EventView]:
    response = await client.get("/api/v1/events", headers=ADMIN)
    return [EventView.model_validate(e) for e in response.json()]


async def test_enrolling_again_with_the_device_token_rotates_it_and_keeps_the_desired_state(
    client: httpx.AsyncClient, enrol: Enrol
) -> None:
    first = await enrol("motor-1")
    patched = await client.patch(
        "/api/v1/devices/motor-1/desired", json={"telemetry_interval_s": 1.0}, headers=ADMIN
    )

    answer = await client.post("/api/v1/enrol", json=_enrolment(device_token=first.token))
    second = Device("motor-1", answer.json()["device_token"])

    assert second.token != first.token
    old = await client.get("/api/v1/devices/motor-1/desired", headers=first.auth)
    new = await client.get("/api/v1/devices/motor-1/desired", headers=second.auth)
    assert old.status_code == 401
    assert new.status_code == 200
    assert DesiredState.model_validate_json(new.content) == DesiredState.model_validate_json(
        patched.content
    )
    assert new.json()["telemetry_interval_s"] == 1.0


async def test_a_token_the_hub_remembers_from_calls_is_refused_at_once_after_enrolling_again(
    client: httpx.AsyncClient, enrol: Enrol
) -> None:
    first = await enrol("motor-1")
    calls = [
        await client.get("/api/v1/devices/motor-1/desired", headers=first.auth) for _ in range(2)
    ]

    answer = await client.post("/api/v1/enrol", json=_enrolment(device_token=first.token))
    second = Device("motor-1", answer.json()["device_token"])

    assert [c.status_code for c in calls] == [200, 200]
    old = await client.get("/api/v1/devices/motor-1/desired", headers=first.auth)
    new = await client.get("/api/v1/devices/motor-1/desired", headers=second.auth)
    assert old.status_code == 401
    assert new.status_code == 200


async def test_enrol_with_a_bad_device_id_names_the_field(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    response = await client.post("/api/v1/enrol", json=_enrolment(device_id="Motor 1"))

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.device_id: String should match pattern")
    assert count(hub, DeviceRow) == 0


async def test_an_impostor_with_the_enrolment_token_cannot_take_over_an_enrolled_id(
    client: httpx.AsyncClient, device: Device
) -> None:
    stolen = await client.post("/api/v1/enrol", json=_enrolment(device_token="a guess"))
    again = await client.post("/api/v1/enrol", json=_enrolment())

    assert stolen.status_code == again.status_code == 403
    assert "edgestack devices approve motor-1" in stolen.json()["detail"]
    batch = event_batch(1).model_dump(mode="json")
    still = await client.post("/api/v1/devices/motor-1/events", json=batch, headers=device.auth)
    assert still.status_code == 200
    kinds = [(e.event.kind, e.device_id) for e in await _events(client)]
    # One refusal recorded for the wait, not one per attempt.
    assert kinds == [
        ("device_enrolled", "motor-1"),
        ("reenrol_refused", "motor-1"),
        ("alarm_raised", "motor-1"),
    ]
    view = await client.get("/api/v1/devices/motor-1", headers=ADMIN)
    assert view.json()["reenrolment"] == "waiting"


async def test_an_approval_lets_one_enrolment_through_and_revokes_the_old_token(
    client: httpx.AsyncClient, device: Device
) -> None:
    await client.post("/api/v1/enrol", json=_enrolment())

    approved = await client.post("/api/v1/devices/motor-1/approval", headers=ADMIN)
    first = await client.post("/api/v1/enrol", json=_enrolment())
    second = await client.post("/api/v1/enrol", json=_enrolment())

    assert approved.status_code == 200
    assert approved.json()["reenrolment"] == "approved"
    assert first.status_code == 200
    assert second.status_code == 403
    old = await client.get("/api/v1/devices/motor-1/desired", headers=device.auth)
    assert old.status_code == 401
    fresh = Device("motor-1", first.json()["device_token"])
    assert (
        await client.get("/api/v1/devices/motor-1/desired", headers=fresh.auth)
    ).status_code == 200
    events = await _events(client)
    assert [e.event.kind for e in events] == [
        "device_enrolled",
        "reenrol_refused",
        "device_reenrolled",
        "reenrol_refused",
    ]
    assert "as approved" in events[2].event.message


async def test_approving_an_unknown_device_or_without_the_admin_token_is_refused(
    client: httpx.AsyncClient, device: Device
) -> None:
    unknown = await client.post("/api/v1/devices/motor-9/approval", headers=ADMIN)
    by_device = await client.post("/api/v1/devices/motor-1/approval", headers=device.auth)
    not_waiting = await client.post("/api/v1/devices/motor-1/approval", headers=ADMIN)
    taken = await client.post("/api/v1/enrol", json=_enrolment())

    assert unknown.status_code == 404
    assert by_device.status_code == 401
    assert not_waiting.status_code == 409
    assert "is not waiting for approval" in not_waiting.json()["detail"]
    assert taken.status_code == 403
    view = await client.get("/api/v1/devices/motor-1", headers=ADMIN)
    assert view.json()["reenrolment"] == "waiting"


@pytest.mark.parametrize("path", ["desired", "reported", "telemetry", "events", "samples"])
async def test_an_unknown_id_and_a_wrong_token_get_the_same_answer(
    client: httpx.AsyncClient, device: Device, path: str
) -> None:
    method = "GET" if path == "desired" else "PUT" if path == "reported" else "POST"
    wrong = {"Authorization": "Bearer not-the-token"}

    answers = [
        await client.request(
            method, f"/api/v1/devices/{device_id}/{path}", headers=headers, json={}
        )
        for device_id, headers in (
            ("motor-1", wrong),
            ("motor-404", wrong),
            ("motor-404", device.auth),
            ("motor-404", {}),
        )
    ]

    assert {a.status_code for a in answers} == {401}
    details = {a.json()["detail"].replace("motor-404", "motor-1") for a in answers}
    assert len(details) == 1
