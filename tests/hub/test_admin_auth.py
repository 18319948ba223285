import httpx
import pytest

from .factories import Device, Enrol

pytestmark = pytest.mark.anyio

ADMIN_ROUTES = [
    ("GET", "/v1/devices"),
    ("GET", "/v1/devices/motor-1"),
    ("PATCH", "/v1/devices/motor-1/desired"),
    ("POST", "/v1/models"),
    ("GET", "/v1/models"),
    ("POST", "/v1/deployments"),
    ("GET", "/v1/events"),
    ("GET", "/v1/samples"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_admin_routes_refuse_a_device_token(
    client: httpx.AsyncClient, device: Device, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=device.auth, content=b"{}")

    assert response.status_code == 401
    assert "admin token" in response.json()["detail"]
    assert "EDGESTACK_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_admin_routes_refuse_no_token(
    client: httpx.AsyncClient, device: Device, method: str, path: str
) -> None:
    response = await client.request(method, path, content=b"{}")

    assert response.status_code == 401


async def test_a_device_token_reads_only_its_own_twin(
    client: httpx.AsyncClient, device: Device, enrol: Enrol
) -> None:
    await enrol("motor-2")

    response = await client.get("/v1/devices/motor-2/desired", headers=device.auth)

    assert response.status_code == 401
