import httpx
import pytest

from edgestack.profiles import PROFILES
from edgestack.protocol import DeviceView, ReportedState

from .factories import ADMIN, HARDWARE, Device

pytestmark = pytest.mark.anyio


async def _view(client: httpx.AsyncClient) -> DeviceView:
    return DeviceView.model_validate_json(
        (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).content
    )


async def test_the_profiles_are_listed_smallest_first_with_their_budgets(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/profiles", headers=ADMIN)

    assert response.status_code == 200
    listed = response.json()
    assert [p["name"] for p in listed] == ["mcu", "pi", "ipc", "cloud"]
    assert listed[1] == PROFILES["pi"].model_dump(mode="json")


async def test_a_device_is_in_the_profile_its_latest_reported_hardware_puts_it_in(
    client: httpx.AsyncClient, device: Device
) -> None:
    enrolled_as = (await _view(client)).profile
    server = HARDWARE.model_copy(update={"arch": "x86_64", "ram_mb": 32 * 1024})
    reported = ReportedState(desired_version=0, status="idle", hardware=server)
    await client.put(
        "/api/v1/devices/motor-1/reported", content=reported.model_dump_json(), headers=device.auth
    )

    after_report = (await _view(client)).profile

    assert (enrolled_as, after_report) == ("pi", "ipc")


async def test_the_operator_overrides_the_profile_and_null_gives_it_back_to_the_hardware(
    client: httpx.AsyncClient, device: Device
) -> None:
    path = "/api/v1/devices/motor-1/desired"

    overridden = await client.patch(path, json={"profile": "cloud"}, headers=ADMIN)
    as_cloud = await _view(client)
    await client.patch(path, json={"profile": None}, headers=ADMIN)
    as_hardware = await _view(client)

    assert overridden.json()["profile"] == "cloud"
    assert (as_cloud.profile, as_hardware.profile) == ("cloud", "pi")
    assert as_hardware.desired.profile is None


async def test_an_unknown_profile_is_422_naming_the_valid_ones_and_changes_nothing(
    client: httpx.AsyncClient, device: Device
) -> None:
    response = await client.patch(
        "/api/v1/devices/motor-1/desired", json={"profile": "jetson"}, headers=ADMIN
    )

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "profile: 'jetson' is no device profile; choose one of mcu, pi, ipc, cloud "
        "(GET /api/v1/profiles), or null for the one the device's hardware puts it in"
    )
    view = await _view(client)
    assert view.desired.version == 0 and view.profile == "pi"
