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


OWN_PAGE = {"Origin": "http://hub"}
TWIN = "/api/v1/devices/motor-1/desired"


async def test_the_login_cookie_changes_things_only_from_the_hubs_own_page(
    client: httpx.AsyncClient, device: Device
) -> None:
    await client.post("/api/v1/login", json={"token": ADMIN_TOKEN}, headers=OWN_PAGE)
    patch = {"telemetry_interval_s": 3}

    # A page on another port of the same host is the same site: the browser sends the cookie.
    elsewhere = await client.patch(TWIN, json=patch, headers={"Origin": "http://hub:3000"})
    sibling = await client.patch(TWIN, json=patch, headers={"Sec-Fetch-Site": "same-site"})
    unsaid = await client.patch(TWIN, json=patch)
    own = await client.patch(TWIN, json=patch, headers=OWN_PAGE)

    assert [r.status_code for r in (elsewhere, sibling, unsaid)] == [403, 403, 403]
    assert "Origin: http://hub:3000" in elsewhere.json()["detail"]
    assert own.status_code == 200
    # Reads stay open to the cookie: another page cannot see their answers anyway.
    assert (await client.get(TWIN.removesuffix("/desired"))).status_code == 200


async def test_a_bearer_token_changes_things_from_anywhere(
    client: httpx.AsyncClient, device: Device
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Origin": "http://apps.example"}

    response = await client.patch(TWIN, json={"telemetry_interval_s": 3}, headers=headers)

    assert response.status_code == 200


async def test_a_login_from_another_page_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/login", json={"token": ADMIN_TOKEN}, headers={"Origin": "http://hub:3000"}
    )

    assert response.status_code == 403
    assert "set-cookie" not in response.headers
