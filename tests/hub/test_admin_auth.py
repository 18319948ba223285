import httpx
import pytest

from .factories import Device, Enrol

pytestmark = pytest.mark.anyio

ADMIN_ROUTES = [
    ("GET", "/api/v1/devices"),
    ("GET", "/api/v1/devices/motor-1"),
    ("PATCH", "/api/v1/devices/motor-1/desired"),
    ("POST", "/api/v1/models"),
    ("GET", "/api/v1/models"),
    ("POST", "/api/v1/deployments"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/samples"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_admin_routes_refuse_a_device_token(
    client: httpx.AsyncClient, device: Device, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=device.auth, content=b"{}")

    assert response.status_code == 401
    assert "role or above" in response.json()["detail"]
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

    response = await client.get("/api/v1/devices/motor-2/desired", headers=device.auth)

    assert response.status_code == 401
