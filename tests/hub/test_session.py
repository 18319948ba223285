import httpx
import pytest

from edgestack.hub.api.deps import SESSION_COOKIE

from .factories import ADMIN_TOKEN, Device

pytestmark = pytest.mark.anyio


async def test_a_login_cookie_stands_for_its_token_until_logout(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/me")).status_code == 401

    response = await client.post("/api/v1/login", json={"token": ADMIN_TOKEN})

    assert response.json() == {"name": "hub-admin", "role": "admin"}
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert (await client.get("/api/v1/me")).json()["role"] == "admin"
    assert (await client.get("/api/v1/devices")).status_code == 200

    assert (await client.post("/api/v1/logout")).status_code == 204
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/api/v1/me")).status_code == 401


@pytest.mark.parametrize("body", [{"token": "wrong"}, {"token": ""}, {}, {"token": 1}])
async def test_a_login_with_no_api_token_sets_no_cookie(
    client: httpx.AsyncClient, body: object
) -> None:
    response = await client.post("/api/v1/login", json=body)

    assert response.status_code in (401, 422)
    assert "token" in str(response.json()["detail"])
    assert "set-cookie" not in response.headers


async def test_a_device_token_logs_nobody_in(client: httpx.AsyncClient, device: Device) -> None:
    response = await client.post("/api/v1/login", json={"token": device.token})

    assert response.status_code == 401
