"""Named API tokens: made with a role by an admin, working as bearer token and login cookie
until revoked or expired."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from edgestack.hub.context import HubContext
from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import ApiTokenRow

from .factories import ADMIN

pytestmark = pytest.mark.anyio


async def _token(client: httpx.AsyncClient, name: str, role: str, **extra: object) -> str:
    response = await client.post(
        "/api/v1/tokens", json={"name": name, "role": role, **extra}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["token"]
    return secret


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_named_token_speaks_for_its_name_and_role(client: httpx.AsyncClient) -> None:
    secret = await _token(client, "grafana", "viewer")

    me = await client.get("/api/v1/me", headers=_bearer(secret))
    reads = await client.get("/api/v1/devices", headers=_bearer(secret))
    writes = await client.put("/api/v1/alerts/rules", json={"rules": []}, headers=_bearer(secret))

    assert secret.startswith("est_")
    assert me.json() == {"name": "grafana", "role": "viewer"}
    assert reads.status_code == 200
    assert writes.status_code == 403
    assert "token 'grafana' has the viewer role" in writes.json()["detail"]


async def test_tokens_are_listed_without_their_secrets(client: httpx.AsyncClient) -> None:
    secret = await _token(client, "ci-deployer", "operator", expires_days=30)
    await _token(client, "alice", "admin")

    response = await client.get("/api/v1/tokens", headers=ADMIN)

    listed = response.json()
    assert [(t["name"], t["role"]) for t in listed] == [
        ("alice", "admin"),
        ("ci-deployer", "operator"),
    ]
    assert all(t["created_by"] == "hub-admin" for t in listed)
    assert listed[1]["expires_at"] > listed[1]["created_at"]
    assert listed[0]["expires_at"] is None
    assert secret not in response.text
    assert "token" not in listed[0]


@pytest.mark.parametrize("where", ["bearer", "cookie"])
async def test_a_revoked_token_stops_working_at_once(client: httpx.AsyncClient, where: str) -> None:
    secret = await _token(client, "grafana", "viewer")
    if where == "cookie":
        assert (await client.post("/api/v1/login", json={"token": secret})).status_code == 200
    headers = _bearer(secret) if where == "bearer" else {}
    assert (await client.get("/api/v1/devices", headers=headers)).status_code == 200

    revoked = await client.delete("/api/v1/tokens/grafana", headers=ADMIN)
    refused = await client.get("/api/v1/devices", headers=headers)

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert refused.status_code == 401
    assert "token 'grafana' was revoked" in refused.json()["detail"]
    again = await client.post("/api/v1/login", json={"token": secret})
    assert again.status_code == 401


async def test_an_expired_token_is_refused(client: httpx.AsyncClient, hub: HubContext) -> None:
    secret = await _token(client, "temp", "operator", expires_days=1)
    with hub.db.writer() as session:
        session.execute(update(ApiTokenRow).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()

    response = await client.get("/api/v1/devices", headers=_bearer(secret))

    assert response.status_code == 401
    assert "token 'temp' expired" in response.json()["detail"]


async def test_a_taken_name_is_refused_even_once_revoked(client: httpx.AsyncClient) -> None:
    await _token(client, "grafana", "viewer")
    await client.delete("/api/v1/tokens/grafana", headers=ADMIN)

    again = await client.post(
        "/api/v1/tokens", json={"name": "grafana", "role": "admin"}, headers=ADMIN
    )
    reserved = await client.post(
        "/api/v1/tokens", json={"name": "hub-admin", "role": "admin"}, headers=ADMIN
    )

    assert again.status_code == 409
    assert again.json()["detail"].startswith("name: a token named 'grafana' exists")
    assert reserved.status_code == 409


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {"name": "Grafana", "role": "viewer"},
            "body.name: Value error, 'Grafana' is no token name",
        ),
        ({"name": "a b", "role": "viewer"}, "body.name"),
        ({"name": "ok", "role": "root"}, "body.role"),
        ({"name": "ok", "role": "viewer", "expires_days": 0}, "body.expires_days"),
        ({"name": "ok", "role": "viewer", "secret": "x"}, "body.secret"),
    ],
)
async def test_a_bad_token_request_is_refused_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], named: str
) -> None:
    response = await client.post("/api/v1/tokens", json=body, headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["detail"].startswith(named)


async def test_revoking_twice_or_an_unknown_name_is_refused(client: httpx.AsyncClient) -> None:
    await _token(client, "grafana", "viewer")
    await client.delete("/api/v1/tokens/grafana", headers=ADMIN)

    twice = await client.delete("/api/v1/tokens/grafana", headers=ADMIN)
    unknown = await client.delete("/api/v1/tokens/nobody", headers=ADMIN)

    assert twice.status_code == 409
    assert unknown.status_code == 404


async def test_an_operator_token_cannot_make_tokens(client: httpx.AsyncClient) -> None:
    secret = await _token(client, "ci", "operator")

    response = await client.post(
        "/api/v1/tokens", json={"name": "mine", "role": "admin"}, headers=_bearer(secret)
    )

    assert response.status_code == 403
