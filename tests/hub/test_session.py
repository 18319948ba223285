"""The dashboard's login: a cookie holding a random id the hub keeps with the token it was
made from, never the token, good until logout, expiry, or the token stops working."""

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from edgestack.hub import HubSettings, create_app
from edgestack.hub.api.deps import SESSION_COOKIE
from edgestack.hub.app import hub_of
from edgestack.hub.store import sessions
from edgestack.hub.store.devices import hash_token
from edgestack.hub.store.tables import LoginSessionRow

from .factories import ADMIN, ADMIN_TOKEN, Device, count

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

    login = client.cookies[SESSION_COOKIE]
    assert (await client.post("/api/v1/logout")).status_code == 204
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/api/v1/me")).status_code == 401

    # A copy of the cookie kept elsewhere dies with the logout too.
    client.cookies.set(SESSION_COOKIE, login)
    assert (await client.get("/api/v1/me")).status_code == 401


async def _named_token(client: httpx.AsyncClient, name: str, role: str) -> str:
    response = await client.post("/api/v1/tokens", json={"name": name, "role": role}, headers=ADMIN)
    assert response.status_code == 201, response.text
    secret: str = response.json()["token"]
    return secret


def _cookie_of(response: httpx.Response) -> str:
    """The login id set by `response`, read off its header: a client drops a cookie whose
    max-age is spent, a stolen copy need not."""
    name, _, value = response.headers["set-cookie"].partition(";")[0].partition("=")
    assert name == SESSION_COOKIE
    return value


@pytest.mark.parametrize("who", ["hub-admin", "grafana"])
async def test_the_login_cookie_is_a_random_id_the_hub_keeps_only_hashed(
    client: httpx.AsyncClient, app: FastAPI, who: str
) -> None:
    token = ADMIN_TOKEN if who == "hub-admin" else await _named_token(client, who, "viewer")

    first = await client.post("/api/v1/login", json={"token": token})
    second = await client.post("/api/v1/login", json={"token": token})

    logins = [_cookie_of(first), _cookie_of(second)]
    assert first.json()["name"] == who
    assert token not in first.headers["set-cookie"]
    assert logins[0] != logins[1]
    assert all(len(login) >= 43 for login in logins)
    with hub_of(app).db.session() as session:
        kept = set(session.scalars(select(LoginSessionRow.id_sha256)))
    assert kept == {hash_token(login) for login in logins}
    for login in logins:
        client.cookies.set(SESSION_COOKIE, login)
        assert (await client.get("/api/v1/me")).json()["name"] == who


async def test_revoking_a_token_ends_its_logins_at_once(client: httpx.AsyncClient) -> None:
    secret = await _named_token(client, "grafana", "viewer")
    logins = [
        _cookie_of(await client.post("/api/v1/login", json={"token": secret})) for _ in range(2)
    ]
    admin = _cookie_of(await client.post("/api/v1/login", json={"token": ADMIN_TOKEN}))

    await client.delete("/api/v1/tokens/grafana", headers=ADMIN)

    for login in logins:
        client.cookies.set(SESSION_COOKIE, login)
        refused = await client.get("/api/v1/devices")
        assert refused.status_code == 401
        assert "token 'grafana' was revoked" in refused.json()["detail"]
    client.cookies.set(SESSION_COOKIE, admin)
    assert (await client.get("/api/v1/devices")).status_code == 200


async def test_an_expired_login_is_refused_and_forgotten(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "LIFETIME_S", 0)
    expired = _cookie_of(await client.post("/api/v1/login", json={"token": ADMIN_TOKEN}))
    client.cookies.set(SESSION_COOKIE, expired)

    refused = await client.get("/api/v1/me")

    assert refused.status_code == 401
    assert count(hub_of(app), LoginSessionRow) == 0


async def test_a_login_sweeps_away_the_expired_ones(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "LIFETIME_S", 0)
    for _ in range(3):
        await client.post("/api/v1/login", json={"token": ADMIN_TOKEN})
    monkeypatch.setattr(sessions, "LIFETIME_S", 3600)

    live = _cookie_of(await client.post("/api/v1/login", json={"token": ADMIN_TOKEN}))

    with hub_of(app).db.session() as session:
        kept = list(session.scalars(select(LoginSessionRow.id_sha256)))
    assert kept == [hash_token(live)]


async def _me(app: FastAPI, login: str) -> httpx.Response:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://hub",
            cookies={SESSION_COOKIE: login},
        ) as client,
    ):
        return await client.get("/api/v1/me")


async def test_a_hub_started_with_another_admin_token_honours_no_login_of_the_old_one(
    settings: HubSettings,
) -> None:
    first = create_app(settings)
    async with (
        first.router.lifespan_context(first),
        httpx.AsyncClient(transport=httpx.ASGITransport(first), base_url="http://hub") as client,
    ):
        admin = _cookie_of(await client.post("/api/v1/login", json={"token": ADMIN_TOKEN}))
        secret = await _named_token(client, "grafana", "viewer")
        named = _cookie_of(await client.post("/api/v1/login", json={"token": secret}))

    other_token = settings.model_copy(update={"admin_token": SecretStr("another-admin-token")})
    refused = await _me(create_app(other_token), admin)
    kept = await _me(create_app(other_token), named)
    same_token = await _me(create_app(settings), admin)

    assert refused.status_code == 401
    assert kept.json() == {"name": "grafana", "role": "viewer"}
    assert same_token.json() == {"name": "hub-admin", "role": "admin"}


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
