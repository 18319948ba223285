"""The audit log: every control action with who, what, when, and the state before and
after, written in the action's own transaction."""

import uuid

import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import AuditRow
from edgestack.protocol import SampleImport

from .factories import (
    ADMIN,
    ENROL_TOKEN,
    HARDWARE,
    Device,
    Ready,
    count,
    packed_bundle,
    sample_batch,
)
from .test_alerts import P99_RULE
from .test_jobs import TRAIN
from .test_policies import POLICY
from .test_review import _batch as review_batch
from .test_roles import CONTROL
from .test_rollouts import GATE

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


# Each control operation, called so that it succeeds, in an order where each finds what it
# needs: (operation id, method, path, JSON body or raw bytes).
def _steps(windows: list[int]) -> list[tuple[str, str, str, object]]:
    samples = sample_batch(2, 2)
    imported = SampleImport(batch_id=uuid.uuid4(), spec=samples.spec, samples=samples.samples)
    rollout = {"model": "motor", "to": ["all"], "waves": [1.0], "shadow_s": 30, "gate": GATE}
    span = {"device_id": "d1", "start": "2025-01-01T00:00:00Z", "end": "2025-01-01T01:00:00Z"}
    return [
        ("models-register", "POST", "/models", packed_bundle("motor", 1, model=b"v1")),
        ("deployments-create", "POST", "/deployments", {"model": "motor", "all": True}),
        ("models-register", "POST", "/models", packed_bundle("motor", 2, model=b"v2")),
        ("rollouts-start", "POST", "/rollouts", rollout),
        ("rollouts-pause", "POST", "/rollouts/1/pause", None),
        ("rollouts-resume", "POST", "/rollouts/1/resume", None),
        ("rollouts-promote", "POST", "/rollouts/1/promote", None),
        ("rollouts-rollback", "POST", "/rollouts/1/rollback", None),
        ("rollouts-start", "POST", "/rollouts", rollout),
        ("rollouts-abort", "POST", "/rollouts/2/abort", None),
        ("deployments-undeploy", "POST", "/undeployments", {"devices": ["d2"]}),
        ("twin-patch-desired", "PATCH", "/devices/d1/desired", {"telemetry_interval_s": 7}),
        ("devices-tag", "PATCH", "/devices/d1/tags", {"tags": {"site": "a"}}),
        ("devices-approve", "POST", "/devices/d2/approval", None),
        ("datasets-import", "POST", "/datasets/imported/samples", imported.model_dump(mode="json")),
        ("datasets-freeze", "POST", "/datasets/imported/versions", None),
        (
            "datasets-relabel",
            "POST",
            "/datasets/imported/relabel",
            {"since": "2025-01-01T00:00:01Z", "to": "worn"},
        ),
        ("datasets-remove", "POST", "/datasets/imported/removal", {"label": "worn"}),
        ("jobs-submit", "POST", "/jobs", TRAIN),
        ("jobs-cancel", "POST", "/jobs/1/cancel", None),
        (
            "review-label",
            "POST",
            "/windows/label",
            {"ids": windows, "label": "worn", "dataset": "r"},
        ),
        ("policies-put", "PUT", "/policies/retrain-on-drift", POLICY),
        ("policies-trigger", "POST", "/policies/retrain-on-drift/runs", {"devices": ["d1"]}),
        ("policies-delete", "DELETE", "/policies/retrain-on-drift", None),
        ("alerts-set-rules", "PUT", "/alerts/rules", {"rules": [P99_RULE]}),
        (
            "feedback-post",
            "POST",
            "/feedback",
            {"batch_id": str(uuid.uuid4()), "spans": [{**span, "label": "normal"}]},
        ),
        ("keys-rotate", "POST", "/keys/rotate", None),
        ("tokens-create", "POST", "/tokens", {"name": "grafana", "role": "viewer"}),
        ("tokens-revoke", "DELETE", "/tokens/grafana", None),
        ("webhooks-create", "POST", "/webhooks", {"url": "http://127.0.0.1:9/hook"}),
        ("webhooks-delete", "DELETE", "/webhooks/1", None),
    ]


async def _succeeds_with_one_row(
    client: httpx.AsyncClient, hub: HubContext, step: tuple[str, str, str, object]
) -> None:
    operation, method, path, payload = step
    before = count(hub, AuditRow)
    raw = isinstance(payload, bytes)
    response = await client.request(
        method,
        f"/api/v1{path}",
        content=payload if raw else None,
        json=None if raw else payload,
        headers={**ADMIN, "Content-Type": "application/octet-stream"} if raw else ADMIN,
    )
    assert response.status_code < 300, f"{operation}: {response.text}"
    rows = await _log(client, after_id=str(before))
    assert [(r["action"], r["actor"]) for r in rows] == [(operation, "hub-admin")]


async def test_every_control_route_that_succeeds_leaves_one_row_naming_it(
    client: httpx.AsyncClient, hub: HubContext, ready: Ready
) -> None:
    d1 = await ready("d1")
    await ready("d2")
    # d2 enrolled again without its token waits for approval; d1 sends the windows asked.
    body = {"device_id": "d2", "enrol_token": ENROL_TOKEN, "hardware": HARDWARE.model_dump()}
    assert (await client.post("/api/v1/enrol", json=body)).status_code == 403
    ask = ("review-ask", "POST", "/devices/d1/window-requests", {"count": 2})
    await _succeeds_with_one_row(client, hub, ask)
    sent = await client.post(
        "/api/v1/devices/d1/windows", content=review_batch(1, 2).model_dump_json(), headers=d1.auth
    )
    assert sent.status_code == 200, sent.text
    windows = [w["id"] for w in (await client.get("/api/v1/windows", headers=ADMIN)).json()]
    steps = [ask, *_steps(windows)]

    for step in steps[1:]:
        await _succeeds_with_one_row(client, hub, step)

    assert {s[0] for s in steps} == {r.operation for r in CONTROL if r.audited}, (
        "an audited control route has no step here: add one that succeeds"
    )
