"""The retrain-on-drift policy: asked windows, labelled, then a train and an optimise job,
each step an event, a run at a time."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bundles import random_bundle
from edgestack.bundle import Bundle
from edgestack.hub import HubSettings
from edgestack.hub.context import HubContext
from edgestack.hub.store import policies
from edgestack.protocol import BundleRef, ModelView, ReviewWindow, WindowBatch

from .factories import (
    ADMIN,
    REFERENCE,
    SHIFTED,
    SPEC,
    Device,
    Enrol,
    Ready,
    monitored_batch,
    packed_bundle,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(settings: HubSettings) -> HubSettings:
    # The tests step policies themselves; the controller's own ticks would race them.
    return settings.model_copy(update={"control_tick_s": 60})


POLICY = {"dataset": "review", "model": "decision_tree", "profile": "pi", "windows": 4}


def _advance(hub: HubContext) -> list[int]:
    with hub.db.writer() as session:
        moved = policies.advance(session)
        session.commit()
    return moved


async def _send_windows(client: httpx.AsyncClient, who: Device, request_id: int) -> list[int]:
    """The device answers its request with 4 windows; their ids on the hub."""
    at = datetime(2025, 1, 1, tzinfo=UTC)
    batch = WindowBatch(
        batch_id=uuid.uuid4(),
        request_id=request_id,
        spec=SPEC,
        bundle_digest="ab" * 32,
        windows=[
            ReviewWindow(
                at=at + timedelta(seconds=i), features=[i, 1.0], predicted="normal", confidence=0.5
            )
            for i in range(4)
        ],
    )
    await client.post(
        f"/api/v1/devices/{who.device_id}/windows",
        content=batch.model_dump_json(),
        headers=who.auth,
    )
    listed = (await client.get(f"/api/v1/windows?device={who.device_id}", headers=ADMIN)).json()
    return [w["id"] for w in listed]


async def _label(client: httpx.AsyncClient, ids: list[int], dataset: str = "review") -> None:
    body = {"ids": ids, "label": "worn", "dataset": dataset}
    response = await client.post("/api/v1/windows/label", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text


async def _finish(client: httpx.AsyncClient, made: ModelView | None, error: str = "") -> None:
    """Play the worker: claim the queued job and end it, with `made` registered or failed."""
    job = (await client.post("/api/v1/jobs/claim", headers=ADMIN)).json()
    outcome: dict[str, Any] = (
        {"outcome": "succeeded", "result": {"model": made.model_dump(mode="json")}}
        if made
        else {"outcome": "failed", "error": error}
    )
    await client.post(f"/api/v1/jobs/{job['id']}/report", json=outcome, headers=ADMIN)


def _model(version: int) -> ModelView:
    bundle = random_bundle(version, name="review", version=version)
    return ModelView(
        name="review",
        version=version,
        digest=f"{version:02d}" * 32,
        size_bytes=100,
        registered_at=datetime(2025, 1, 1, tzinfo=UTC),
        manifest=bundle.manifest,
    )


async def _run(client: httpx.AsyncClient) -> dict[str, Any]:
    runs: list[dict[str, Any]] = (await client.get("/api/v1/policy-runs", headers=ADMIN)).json()
    return runs[-1]


async def test_a_run_labels_its_windows_then_trains_and_optimises_each_step_an_event(
    client: httpx.AsyncClient, hub: HubContext, device: Device, enrol: Enrol
) -> None:
    other = await enrol("motor-2")
    put = await client.put(
        "/api/v1/policies/retrain-on-drift", json={**POLICY, "min_labelled": 5}, headers=ADMIN
    )
    started = await client.post(
        "/api/v1/policies/retrain-on-drift/runs",
        json={"devices": ["motor-2", "motor-1"], "reason": "drift on line 2"},
        headers=ADMIN,
    )
    again = await client.post(
        "/api/v1/policies/retrain-on-drift/runs", json={"devices": ["motor-1"]}, headers=ADMIN
    )
    mine = await _send_windows(client, device, started.json()["requests"]["motor-1"])
    theirs = await _send_windows(client, other, started.json()["requests"]["motor-2"])
    await _label(client, mine[:2])
    await _label(client, theirs[:2], dataset="elsewhere")  # not the policy's dataset
    still = (_advance(hub), await _run(client))
    await _label(client, theirs[2:] + mine[2:3])
    trained = (_advance(hub), await _run(client))
    waiting = _advance(hub)
    train_job = (await client.get(f"/api/v1/jobs/{trained[1]['job_id']}", headers=ADMIN)).json()
    await _finish(client, _model(1))
    optimising = (_advance(hub), await _run(client))
    optimise_job = (
        await client.get(f"/api/v1/jobs/{optimising[1]['job_id']}", headers=ADMIN)
    ).json()
    await _finish(client, _model(2))
    done = (_advance(hub), await _run(client))
    kinds = [
        e["event"]["kind"]
        for e in (await client.get("/api/v1/events", headers=ADMIN)).json()
        if e["event"]["kind"].startswith("policy")
    ]

    assert put.status_code == 200 and put.json()["policy"]["min_labelled"] == 5
    assert started.status_code == 201 and started.json()["devices"] == ["motor-1", "motor-2"]
    assert started.json()["state"] == "labelling"
    assert again.status_code == 409 and "in run" in again.json()["detail"]
    assert still == ([], {**still[1], "state": "labelling", "labelled": 2})
    assert trained[1]["state"] == "training"
    assert trained[1]["labelled"] == 5 and waiting == []
    assert train_job["job"]["freeze"] is True and train_job["job"]["dataset"] == "review"
    assert train_job["job"]["model"] == "decision_tree"
    assert optimising[1]["state"] == "optimising"
    assert optimising[1]["model"]["version"] == 1
    assert (optimise_job["job"]["model"], optimise_job["job"]["version"]) == ("review", 1)
    assert optimise_job["job"]["profile"] == "pi"
    assert done[1]["state"] == "succeeded" and done[1]["model"]["version"] == 2
    assert done[1]["finished_at"] is not None and done[1]["job_id"] is None
    assert kinds == [
        "policy_triggered",
        "policy_step",
        "policy_step",
        "policy_succeeded",
    ]


async def test_a_failed_job_fails_the_run_and_a_removed_policy_ends_its_run(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    await client.put(
        "/api/v1/policies/retrain-on-drift", json={**POLICY, "min_labelled": 1}, headers=ADMIN
    )
    run = (
        await client.post(
            "/api/v1/policies/retrain-on-drift/runs", json={"devices": ["motor-1"]}, headers=ADMIN
        )
    ).json()
    ids = await _send_windows(client, device, run["requests"]["motor-1"])
    await _label(client, ids[:1])
    _advance(hub)
    await _finish(client, None, error="no dataset 'review'")
    _advance(hub)
    failed = await _run(client)
    second = (
        await client.post(
            "/api/v1/policies/retrain-on-drift/runs", json={"devices": ["motor-1"]}, headers=ADMIN
        )
    ).json()
    removed = await client.delete("/api/v1/policies/retrain-on-drift", headers=ADMIN)
    ended = await _run(client)
    gone = await client.get("/api/v1/policies/retrain-on-drift", headers=ADMIN)

    assert failed["state"] == "failed" and "no dataset 'review'" in failed["error"]
    assert second["state"] == "labelling" and second["id"] == failed["id"] + 1
    assert second["requests"]["motor-1"] == run["requests"]["motor-1"] + 1
    assert removed.status_code == 204
    assert ended["state"] == "failed" and "was removed" in ended["error"]
    assert gone.status_code == 404 and "edgestack policy set" in gone.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("put", "/api/v1/policies/retrain-on-drift", {**POLICY, "profile": "moon"}, 422, "profile"),
        ("put", "/api/v1/policies/retrain-on-drift", {"model": "auto"}, 422, "dataset"),
        ("put", "/api/v1/policies/retrain-forever", POLICY, 422, "name"),
        ("put", "/api/v1/policies/retrain-on-drift", {**POLICY, "windows": 0}, 422, "windows"),
        (
            "post",
            "/api/v1/policies/retrain-on-drift/runs",
            {"devices": ["motor-1"]},
            404,
            "no policy",
        ),
        ("post", "/api/v1/policies/retrain-on-drift/runs", {"devices": []}, 422, "devices"),
    ],
)
async def test_bad_policy_requests_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    device: Device,
    method: str,
    path: str,
    body: dict[str, object],
    status: int,
    says: str,
) -> None:
    response = await client.request(method, path, json=body, headers=ADMIN)

    assert response.status_code == status and says in response.text


async def test_a_run_for_an_unknown_device_changes_nothing(
    client: httpx.AsyncClient, device: Device
) -> None:
    await client.put("/api/v1/policies/retrain-on-drift", json=POLICY, headers=ADMIN)

    response = await client.post(
        "/api/v1/policies/retrain-on-drift/runs",
        json={"devices": ["motor-1", "ghost"]},
        headers=ADMIN,
    )
    desired = (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json()["desired"]

    assert response.status_code == 404 and "ghost" in response.text
    assert desired.get("send_windows") is None
    assert (await client.get("/api/v1/policy-runs", headers=ADMIN)).json() == []


async def _drift(client: httpx.AsyncClient, who: Device, digest: str) -> None:
    """Four batches of 40 windows of input outside the training range: the rolling drift
    covers enough windows from the third, and the default drift alert wants two in a row."""
    for seq in range(1, 5):
        response = await client.post(
            f"/api/v1/devices/{who.device_id}/telemetry",
            content=monitored_batch(seq, digest, SHIFTED),
            headers=who.auth,
        )
        assert response.status_code == 200, response.text


async def test_drift_alerts_start_a_run_feedback_labels_its_windows_and_it_rolls_out(
    client: httpx.AsyncClient, hub: HubContext, ready: Ready
) -> None:
    fleet = [await ready(name) for name in ("d1", "d2", "d3")]
    raw = {**ADMIN, "Content-Type": "application/octet-stream"}
    first = Bundle.create(
        name="review", labels=["normal", "worn"], input=SPEC, model=b"v1", reference=REFERENCE
    )
    running = (await client.post("/api/v1/models", content=first.pack(), headers=raw)).json()
    await client.post("/api/v1/deployments", json={"model": "review", "all": True}, headers=ADMIN)
    candidate = BundleRef.model_validate(
        (
            await client.post("/api/v1/models", content=packed_bundle("review", 2), headers=raw)
        ).json()
    )
    plan = {"to": ["all"], "waves": [0.5, 1.0], "shadow_s": 10, "min_windows": 5}
    body = {"dataset": "review", "model": "decision_tree", "min_labelled": 6, "rollout": plan}
    await client.put("/api/v1/policies/retrain-on-drift", json=body, headers=ADMIN)

    nothing = _advance(hub)
    await _drift(client, fleet[0], running["digest"])
    await _drift(client, fleet[2], running["digest"])
    asked = _advance(hub)
    run = await _run(client)
    again = _advance(hub)  # the run is in progress: the same alerts start no other
    await _drift(client, fleet[1], running["digest"])
    joined = _advance(hub)  # a device that drifts while the run labels joins it
    widened = await _run(client)
    for who in (fleet[0], fleet[2]):
        await _send_windows(client, who, run["requests"][who.device_id])
    # Ground truth for d1's windows (they are from 2025-01-01 00:00:00 to :03), none for d3's.
    spans = [
        {
            "device_id": "d1",
            "start": "2025-01-01T00:00:00Z",
            "end": "2025-01-01T00:01:00Z",
            "label": "worn",
        }
    ]
    await client.post(
        "/api/v1/feedback", json={"batch_id": str(uuid.uuid4()), "spans": spans}, headers=ADMIN
    )
    _advance(hub)
    short = await _run(client)
    unlabelled = (
        await client.get("/api/v1/windows?device=d3&labelled=false", headers=ADMIN)
    ).json()
    await _label(client, [w["id"] for w in unlabelled[:2]])
    _advance(hub)
    training = await _run(client)
    registered = (await client.get("/api/v1/models", headers=ADMIN)).json()[-1]
    await _finish(client, ModelView.model_validate(registered))
    other = await client.post(
        "/api/v1/rollouts", json={**plan, "model": "review", "version": 2}, headers=ADMIN
    )
    _advance(hub)
    waiting = await _run(client)  # another rollout holds the devices: its own waits
    await client.post(f"/api/v1/rollouts/{other.json()['id']}/abort", headers=ADMIN)
    shadowing = _advance(hub)
    rolling = await _run(client)
    rollout = (await client.get(f"/api/v1/rollouts/{rolling['rollout_id']}", headers=ADMIN)).json()
    for _ in rollout["waves"]:  # an operator promotes each wave
        await client.post(f"/api/v1/rollouts/{rollout['id']}/promote", headers=ADMIN)
    _advance(hub)
    done = await _run(client)
    desired = [
        (await client.get(f"/api/v1/devices/{who.device_id}", headers=ADMIN)).json()["desired"]
        for who in fleet
    ]

    assert nothing == []
    assert sorted(asked) == ["d1", "d3"] and again == []
    assert joined == ["d2"] and widened["devices"] == ["d1", "d2", "d3"]
    assert widened["id"] == run["id"]
    assert run["devices"] == ["d1", "d3"] and "drift alerts on d1, d3" in run["reason"]
    assert short["state"] == "labelling" and short["labelled"] == 4  # d1's, from feedback
    assert training["state"] == "training" and training["labelled"] == 6
    assert other.status_code == 201 and waiting["state"] == "training"
    assert rolling["state"] == "rolling_out" and rolling["model"] == {
        "name": candidate.name,
        "version": candidate.version,
        "digest": candidate.digest,
    }
    assert rollout["state"] == "shadowing" and sorted(shadowing) == ["d1", "d2"]
    assert done["state"] == "succeeded" and f"rollout {rollout['id']} completed" in str(
        (await client.get("/api/v1/events", headers=ADMIN)).json()[-1]
    )
    assert all(d["bundle"]["version"] == 2 for d in desired)
