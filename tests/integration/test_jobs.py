"""Hub jobs against a real hub process and its worker."""

import json
import os
import signal
from pathlib import Path

import pytest

from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import EvaluateRequest, JobView, TrainRequest

from .test_cli import cli
from .test_cli_train import _upload

pytestmark = pytest.mark.integration

WORKER = b"edgestack.hub.worker"


def _job(fleet: LocalFleet, job_id: int, *states: str) -> JobView | None:
    job = fleet.client.job(job_id)
    return job if job.state in states else None


def _job_processes(hub_pid: int, marker: bytes = b"spawn_main") -> list[int]:
    """The processes under the hub that run a job: its worker's spawned children; or, with
    another `marker`, those whose command line holds it."""
    found, parents = [], [hub_pid]
    while parents:
        parent = parents.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                parents.append(int(entry.name))
                if marker in command:
                    found.append(int(entry.name))
    return found


def test_a_training_job_runs_in_the_worker_and_registers_its_model(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        _upload(fleet, "motors")

        submitted = cli(fleet, "train", "motors", "--model", "decision_tree", "--job", "--json")
        job_id = json.loads(submitted.stdout)["id"]
        done = wait_until(
            lambda: _job(fleet, job_id, "succeeded", "failed"),
            timeout_s=180,
            what=f"job {job_id} to end",
            every_s=0.5,
        )
        listed = cli(fleet, "jobs", "list", "--json")
        shown = cli(fleet, "jobs", "show", str(job_id))
        logs = cli(fleet, "jobs", "logs", str(job_id))
        models = fleet.client.models()
        scored = cli(fleet, "evaluate", "motors", "--json")
        missing = cli(fleet, "evaluate", "motors", "--dataset", "pumps")
        scoring = fleet.client.submit_job(EvaluateRequest(model="motors"))
        scored_by_job = wait_until(
            lambda: _job(fleet, scoring.id, "succeeded", "failed"),
            timeout_s=120,
            what=f"job {scoring.id} to end",
            every_s=0.5,
        )
        optimising = cli(fleet, "optimize", "motors", "--profile", "pi", "--job", "--json")
        optimised = wait_until(
            lambda: _job(fleet, json.loads(optimising.stdout)["id"], "succeeded", "failed"),
            timeout_s=180,
            what="the optimise job to end",
            every_s=0.5,
        )
        after_optimising = fleet.client.models()

    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert done.state == "succeeded", done.error
    assert done.progress == 1.0 and done.started_at is not None
    assert done.result is not None and done.result["metrics"]["accuracy"] >= 0.9
    [model] = models
    assert (model.name, model.version) == ("motors", 1)
    assert done.result["model"]["digest"] == model.digest
    assert model.manifest.lineage is not None
    assert model.manifest.lineage.trainer == "decision_tree"
    assert [j["id"] for j in json.loads(listed.stdout)] == [job_id]
    assert "succeeded" in shown.stdout and "registered motors v1" in shown.stdout
    lines = logs.stdout.splitlines()
    assert len(lines) >= 3, logs.stdout
    assert lines[-1] == "registered motors v1"
    assert any("/" in line for line in lines[1:-1]), "no progress step in the log"
    # Scored again on the rows its training held out, through the same ONNX model.
    local = json.loads(scored.stdout)
    assert (local["dataset"], local["dataset_version"]) == ("motors", 1)
    assert local["rows"] == done.result["metrics"]["n_test"]
    assert local["metrics"]["accuracy"] == done.result["metrics"]["accuracy"]
    assert missing.returncode == 1 and "pumps" in missing.stdout
    assert scored_by_job.state == "succeeded", scored_by_job.error
    assert scored_by_job.result is not None
    assert scored_by_job.result["metrics"] == local["metrics"]
    assert optimised.state == "succeeded", optimised.error
    assert optimised.result is not None and optimised.result["candidates"]
    best = after_optimising[-1]
    assert (best.name, best.version) == ("motors", 2)
    assert best.manifest.lineage is not None and best.manifest.lineage.parent == model.digest


def test_a_cancelled_job_has_its_process_stopped_and_the_worker_goes_on(
    tmp_path: Path,
) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        hub_pid = fleet.pids[0]
        _upload(fleet, "motors")
        # auto tries every classifier for up to this long: still running when cancelled.
        slow = cli(fleet, "train", "motors", "--model", "auto", "--budget-s", "600", "--job")
        slow_id = fleet.client.jobs()[0].id
        wait_until(
            lambda: _job(fleet, slow_id, "running") and _job_processes(hub_pid),
            timeout_s=60,
            what="the job's process to start",
        )

        cancelled = cli(fleet, "jobs", "cancel", str(slow_id))
        wait_until(
            lambda: not _job_processes(hub_pid), timeout_s=30, what="the job's process to stop"
        )
        again = cli(fleet, "jobs", "cancel", str(slow_id))
        quick = fleet.client.submit_job(TrainRequest(dataset="motors", model="decision_tree"))
        finished = wait_until(
            lambda: _job(fleet, quick.id, "succeeded", "failed"),
            timeout_s=180,
            what="the next job to end",
            every_s=0.5,
        )
        unknown = fleet.client.submit_job(TrainRequest(dataset="pumps", model="decision_tree"))
        followed = cli(fleet, "jobs", "logs", str(unknown.id), "--follow")  # until it ends
        refused = fleet.client.job(unknown.id)
        slow_job = fleet.client.job(slow_id)
        models = fleet.client.models()

    assert slow.returncode == 0 and f"job {slow_id} queued" in slow.stdout
    assert cancelled.returncode == 0 and f"job {slow_id} cancelled" in cancelled.stdout
    assert again.returncode == 1 and "already cancelled" in again.stdout
    assert slow_job.state == "cancelled" and slow_job.result is None
    assert finished.state == "succeeded", finished.error
    assert refused.state == "failed" and refused.error is not None
    assert "no dataset 'pumps'" in refused.error
    assert followed.returncode == 1
    last = followed.stdout.splitlines()[-1]
    assert last.startswith(f"job {unknown.id} failed: ") and "no dataset 'pumps'" in last
    # Only the job after the cancelled one registered a model.
    assert [(m.name, m.version) for m in models] == [("motors", 1)]


def test_the_hub_starts_another_worker_when_its_worker_dies(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        hub_pid = fleet.pids[0]
        [first] = wait_until(
            lambda: _job_processes(hub_pid, WORKER), timeout_s=30, what="the worker to start"
        )

        os.kill(first, signal.SIGKILL)
        [second] = wait_until(
            lambda: [p for p in _job_processes(hub_pid, WORKER) if p != first],
            timeout_s=30,
            what="another worker to start",
        )
        job = fleet.client.submit_job(TrainRequest(dataset="pumps"))
        ended = wait_until(
            lambda: _job(fleet, job.id, "failed", "succeeded"),
            timeout_s=120,
            what="the new worker to run a job",
            every_s=0.5,
        )

    assert second != first
    assert ended.state == "failed" and "pumps" in (ended.error or "")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_job_stops_with_its_hub_and_is_failed_when_the_hub_is_back(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        hub_pid = fleet.pids[0]
        _upload(fleet, "motors")
        job = fleet.client.submit_job(TrainRequest(dataset="motors", budget_s=600))
        running = wait_until(
            lambda: _job_processes(hub_pid), timeout_s=60, what="the job's process to start"
        )

        os.kill(hub_pid, signal.SIGKILL)
        wait_until(
            lambda: not any(_alive(pid) for pid in running),
            timeout_s=30,
            what="the job's process to stop with its hub",
        )
        fleet.stop_hub()  # reaps the killed one
        fleet.start_hub()
        after = fleet.client.job(job.id)
        models = fleet.client.models()

    assert after.state == "failed"
    assert after.error is not None and "hub stopped" in after.error
    assert models == []
