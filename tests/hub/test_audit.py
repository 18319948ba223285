"""The audit log: every control action with who, what, when, and the state before and
after, written in the action's own transaction."""

import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import AuditRow

from .factories import ADMIN, Device, count

pytestmark = pytest.mark.anyio


async def _token(client: httpx.AsyncClient, name: str, role: str) -> dict[str, str]:
    response = await client.post("/api/v1/tokens", json={"name": name, "role": role}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def _log(client: httpx.AsyncClient, **filters: str) -> list[dict[str, object]]:
    response = await client.get("/api/v1/audit", params=filters, headers=ADMIN)
    assert response.status_code == 200, response.text
    rows: list[dict[str, object]] = response.json()
    return rows


async def test_a_twin_patch_is_logged_with_who_and_the_desired_state_before_and_after(
    client: httpx.AsyncClient, device: Device
) -> None:
    ops = await _token(client, "ops-alice", "operator")

    response = await client.patch(
        "/api/v1/devices/motor-1/desired", json={"telemetry_interval_s": 7}, headers=ops
    )

    assert response.status_code == 200, response.text
    [row] = await _log(client, action="twin-patch-desired")
    assert (row["actor"], row["role"], row["target"]) == ("ops-alice", "operator", "motor-1")
    before, after = row["before"], row["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert before["telemetry_interval_s"] == 5
    assert after["telemetry_interval_s"] == 7
    assert after["version"] == before["version"] + 1


async def test_a_refused_action_leaves_no_row(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    refused = [
        await client.patch("/api/v1/devices/motor-1/desired", json={"profile": "x"}, headers=ADMIN),
        await client.patch("/api/v1/devices/motor-9/desired", json={}, headers=ADMIN),
        await client.post("/api/v1/jobs/7/cancel", headers=ADMIN),
        await client.delete("/api/v1/tokens/nobody", headers=ADMIN),
    ]

    assert [r.status_code for r in refused] == [422, 404, 404, 404]
    assert count(hub, AuditRow) == 0


async def test_reads_logins_and_device_calls_are_not_logged(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    await client.get("/api/v1/devices", headers=ADMIN)
    await client.post("/api/v1/login", json={"token": "wrong"})
    await client.post("/api/v1/logout")
    await client.get("/api/v1/devices/motor-1/desired", params={"wait": 0}, headers=device.auth)

    assert count(hub, AuditRow) == 0


async def test_a_token_is_logged_without_its_secret_and_its_revocation_before_and_after(
    client: httpx.AsyncClient,
) -> None:
    made = await client.post(
        "/api/v1/tokens", json={"name": "grafana", "role": "viewer"}, headers=ADMIN
    )
    await client.delete("/api/v1/tokens/grafana", headers=ADMIN)

    created, revoked = await _log(client, target="grafana")
    assert created["action"] == "tokens-create"
    assert created["before"] is None
    assert isinstance(created["after"], dict) and created["after"]["role"] == "viewer"
    assert made.json()["token"] not in str(created)
    assert revoked["action"] == "tokens-revoke"
    assert isinstance(revoked["before"], dict) and revoked["before"]["revoked_at"] is None
    assert isinstance(revoked["after"], dict) and revoked["after"]["revoked_at"] is not None


async def test_a_key_rotation_kept_in_files_is_logged_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/keys/rotate", headers=ADMIN)

    [row] = await _log(client)
    assert row["action"] == "keys-rotate"
    assert isinstance(row["before"], list) and isinstance(row["after"], list)
    assert len(row["after"]) == len(row["before"]) + 1 == len(response.json())


async def test_the_log_filters_by_actor_action_and_target_and_pages_newest_first(
    client: httpx.AsyncClient, device: Device
) -> None:
    ops = await _token(client, "ops", "operator")
    for interval in (6, 7):
        await client.patch(
            "/api/v1/devices/motor-1/desired", json={"telemetry_interval_s": interval}, headers=ops
        )
    await client.patch("/api/v1/devices/motor-1/tags", json={"tags": {"site": "a"}}, headers=ADMIN)

    by_ops = await _log(client, actor="ops")
    tags = await _log(client, action="devices-tag")
    on_motor = await _log(client, target="motor-1", order="newest", limit="2")

    assert [r["action"] for r in by_ops] == ["twin-patch-desired"] * 2
    assert [(r["before"], r["after"]) for r in tags] == [({}, {"site": "a"})]
    assert [r["action"] for r in on_motor] == ["devices-tag", "twin-patch-desired"]
    assert on_motor[1]["after"]["telemetry_interval_s"] == 7  # type: ignore[index]


async def test_only_an_admin_reads_the_log(client: httpx.AsyncClient) -> None:
    ops = await _token(client, "ops", "operator")

    response = await client.get("/api/v1/audit", headers=ops)

    assert response.status_code == 403
