from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from edgestack.hub import HubSettings, create_app

from .factories import ADMIN

pytestmark = pytest.mark.anyio

TRAIN = {"job": {"kind": "train", "dataset": "motors", "model": "decision_tree"}}
OPTIMISE = {"job": {"kind": "optimise", "model": "motors", "profile": "pi"}}
TRADEOFF = {"kind": "tradeoff", "model": "motors", "device": "edge-1", "cloud": "big"}


async def _submit(client: httpx.AsyncClient, body: dict[str, Any] = TRAIN) -> dict[str, Any]:
    response = await client.post("/api/v1/jobs", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


async def _report(client: httpx.AsyncClient, job_id: int, **news: Any) -> httpx.Response:
    return await client.post(f"/api/v1/jobs/{job_id}/report", json=news, headers=ADMIN)


async def test_a_job_goes_from_queued_to_running_to_succeeded_with_its_progress_and_log(
    client: httpx.AsyncClient,
) -> None:
    first = await _submit(client)
    second = await _submit(client, OPTIMISE)

    claimed = (await client.post("/api/v1/jobs/claim", headers=ADMIN)).json()
    halfway = await _report(client, first["id"], progress=0.5, step="fold 1", lines=["a", "b"])
    done = await _report(
        client, first["id"], outcome="succeeded", result={"model": None}, lines=["c"]
    )
    late = await _report(client, first["id"], progress=0.9)
    log = (await client.get(f"/api/v1/jobs/{first['id']}/log?after=1", headers=ADMIN)).json()
    queued = (await client.get("/api/v1/jobs?state=queued", headers=ADMIN)).json()

    assert (first["state"], first["progress"], first["kind"]) == ("queued", 0.0, "train")
    assert first["job"]["model"] == "decision_tree" and first["job"]["cv"] == 0
    assert claimed["id"] == first["id"] and claimed["state"] == "running"
    assert claimed["started_at"] is not None
    assert halfway.json()["progress"] == 0.5 and halfway.json()["step"] == "fold 1"
    body = done.json()
    assert (body["state"], body["progress"], body["log_lines"]) == ("succeeded", 1.0, 3)
    assert body["result"] == {"model": None} and body["finished_at"] is not None
    assert late.status_code == 409 and "succeeded, not running" in late.json()["detail"]
    assert log == {"lines": ["b", "c"]}
    assert [j["id"] for j in queued] == [second["id"]]
    assert queued[0]["kind"] == "optimise"


async def test_each_move_of_a_job_out_of_the_queue_is_a_hub_event(
    client: httpx.AsyncClient,
) -> None:
    succeeding, failing, cancelled = await _submit(client), await _submit(client, OPTIMISE), None
    await client.post("/api/v1/jobs/claim", headers=ADMIN)
    await _report(client, succeeding["id"], outcome="succeeded", result={})
    await client.post("/api/v1/jobs/claim", headers=ADMIN)
    await _report(client, failing["id"], outcome="failed", error="no such model")
    cancelled = await _submit(client)
    await client.post(f"/api/v1/jobs/{cancelled['id']}/cancel", headers=ADMIN)

    events = (await client.get("/api/v1/events", headers=ADMIN)).json()
    seen = [(e["device_id"], e["event"]["kind"], e["event"]["message"]) for e in events]

    assert seen == [
        (None, "job_started", f"job {succeeding['id']} (train decision_tree on motors) started"),
        (
            None,
            "job_succeeded",
            f"job {succeeding['id']} (train decision_tree on motors) succeeded",
        ),
        (None, "job_started", f"job {failing['id']} (optimise motors for pi) started"),
        (None, "job_failed", f"job {failing['id']} (optimise motors for pi) failed: no such model"),
        (None, "job_cancelled", f"job {cancelled['id']} (train decision_tree on motors) cancelled"),
    ]
    assert [e["event"]["severity"] for e in events] == ["info", "info", "info", "warning", "info"]


async def test_a_milestone_a_job_reports_is_a_hub_event_and_a_plain_report_is_none(
    client: httpx.AsyncClient,
) -> None:
    federated = {"job": {"kind": "federated", "dataset": "motors", "to": ["all"], "rounds": 3}}
    job = await _submit(client, federated)
    await client.post("/api/v1/jobs/claim", headers=ADMIN)

    await _report(client, job["id"], progress=0.1, step="aggregator up")
    told = await _report(
        client, job["id"], progress=1 / 3, step="round 1/3", milestone="round 1/3: 2 devices"
    )
    events = (await client.get("/api/v1/events", headers=ADMIN)).json()

    assert told.json()["step"] == "round 1/3"
    assert [(e["event"]["kind"], e["event"]["message"]) for e in events] == [
        ("job_started", f"job {job['id']} (federated fedavg mlp on motors, 3 rounds) started"),
        (
            "job_progress",
            f"job {job['id']} (federated fedavg mlp on motors, 3 rounds): round 1/3: 2 devices",
        ),
    ]
    assert events[1]["event"]["severity"] == "info"


async def test_each_job_is_claimed_once_and_none_is_claimed_when_none_waits(
    client: httpx.AsyncClient,
) -> None:
    job = await _submit(client)

    first = await client.post("/api/v1/jobs/claim", headers=ADMIN)
    second = await client.post("/api/v1/jobs/claim", headers=ADMIN)

    assert first.json()["id"] == job["id"]
    assert second.status_code == 200 and second.json() is None


async def test_a_failed_job_keeps_its_error(client: httpx.AsyncClient) -> None:
    job = await _submit(client)
    await client.post("/api/v1/jobs/claim", headers=ADMIN)

    failed = await _report(client, job["id"], outcome="failed", error="dataset motors: empty")

    assert failed.json()["state"] == "failed"
    assert failed.json()["error"] == "dataset motors: empty"
    assert failed.json()["progress"] == 0.0


async def test_queued_and_running_jobs_are_cancelled_and_ended_ones_are_not(
    client: httpx.AsyncClient,
) -> None:
    running = await _submit(client)
    await client.post("/api/v1/jobs/claim", headers=ADMIN)
    queued = await _submit(client)

    stopped = await client.post(f"/api/v1/jobs/{running['id']}/cancel", headers=ADMIN)
    dropped = await client.post(f"/api/v1/jobs/{queued['id']}/cancel", headers=ADMIN)
    again = await client.post(f"/api/v1/jobs/{queued['id']}/cancel", headers=ADMIN)
    report = await _report(client, running["id"], progress=0.2)
    claim = await client.post("/api/v1/jobs/claim", headers=ADMIN)

    assert stopped.json()["state"] == "cancelled" and dropped.json()["state"] == "cancelled"
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    # The running job's process learns it must stop from its next report.
    assert report.status_code == 409
    assert claim.json() is None


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("post", "/api/v1/jobs", {"job": {"kind": "evaluate"}}, 422, "job"),
        ("post", "/api/v1/jobs", {"job": {"kind": "train"}}, 422, "dataset"),
        ("post", "/api/v1/jobs", {"job": {**TRAIN["job"], "cv": -1}}, 422, "cv"),
        ("post", "/api/v1/jobs", {"job": {**TRAIN["job"], "dataset": "Bad/Name"}}, 422, "dataset"),
        ("post", "/api/v1/jobs", {"job": {**TRAIN["job"], "colour": "red"}}, 422, "colour"),
        ("post", "/api/v1/jobs", {"job": {**TRADEOFF, "fractions": [0.1, 0]}}, 422, "fractions"),
        ("post", "/api/v1/jobs", {"job": {**TRADEOFF, "gate": "vibes"}}, 422, "gate"),
        ("post", "/api/v1/jobs", {"job": {**TRADEOFF, "device": "no device"}}, 422, "device"),
        ("get", "/api/v1/jobs/0", None, 422, "job_id"),
        ("get", "/api/v1/jobs/99999999999999999999", None, 422, "job_id"),
        ("get", "/api/v1/jobs/7", None, 404, "no job 7"),
        ("get", "/api/v1/jobs?state=lost", None, 422, "state"),
        ("get", "/api/v1/jobs/7/log?after=-1", None, 422, "after"),
        ("post", "/api/v1/jobs/7/cancel", None, 404, "no job 7"),
        ("post", "/api/v1/jobs/7/report", {"progress": 0.1}, 404, "no job 7"),
    ],
)
async def test_bad_job_requests_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    says: str,
) -> None:
    response = await client.request(method, path, json=body, headers=ADMIN)

    assert response.status_code == status, response.text
    assert says in response.text


@pytest.mark.parametrize(
    "news",
    [{"progress": 1.5}, {"outcome": "done"}, {"lines": ["x" * 2001]}, {"lines": ["x"] * 101}],
)
async def test_a_report_out_of_bounds_is_refused(
    client: httpx.AsyncClient, news: dict[str, Any]
) -> None:
    job = await _submit(client)
    await client.post("/api/v1/jobs/claim", headers=ADMIN)

    response = await _report(client, job["id"], **news)

    assert response.status_code == 422, response.text


async def test_jobs_need_the_admin_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/jobs", json=TRAIN)

    assert response.status_code == 401


@asynccontextmanager
async def _hub(settings: HubSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub") as client,
    ):
        yield client


async def test_a_job_running_when_the_hub_stopped_is_failed_when_it_starts_again(
    settings: HubSettings,
) -> None:
    async with _hub(settings) as before:
        running = await _submit(before)
        queued = await _submit(before)
        await before.post("/api/v1/jobs/claim", headers=ADMIN)

    async with _hub(settings) as after:
        jobs = {j["id"]: j for j in (await after.get("/api/v1/jobs", headers=ADMIN)).json()}
        events = (await after.get("/api/v1/events", headers=ADMIN)).json()

    assert jobs[running["id"]]["state"] == "failed"
    assert "submit it again" in jobs[running["id"]]["error"]
    assert [e["event"]["kind"] for e in events] == ["job_started", "job_failed"]
    assert jobs[queued["id"]]["state"] == "queued"


async def test_a_hub_running_jobs_on_ray_refuses_a_federated_job_when_submitted(
    settings: HubSettings,
) -> None:
    on_ray = settings.model_copy(update={"jobs": "ray://127.0.0.1:1"})
    federated = {"job": {"kind": "federated", "dataset": "motors", "to": ["all"]}}

    async with _hub(on_ray) as client:
        refused = await client.post("/api/v1/jobs", json=federated, headers=ADMIN)
        trained = await _submit(client)
        listed = (await client.get("/api/v1/jobs", headers=ADMIN)).json()

    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("job.kind: a federated job runs Flower's")
    assert "--jobs local" in refused.json()["detail"]
    assert [job["id"] for job in listed] == [trained["id"]]  # nothing of the refused one queued
