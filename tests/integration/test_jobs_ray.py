"""Hub jobs on a Ray cluster: a Ray head of the module's own on loopback, and a real hub
started with `--jobs ray://...` whose worker runs each job as a Ray task."""

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

import edgestack
from conftest import free_port
from edgestack.client import HubError
from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import FederatedRequest, JobView, TrainRequest

from .test_cli_train import _upload

pytestmark = pytest.mark.integration

# What the job's Ray task tells first: the node and the worker process it runs in.
RUNNER = re.compile(r"running on Ray node ([0-9a-f]+), worker pid (\d+), reaching the hub at (\S+)")


@dataclass
class RayHead:
    """A Ray head on this machine, reached on 127.0.0.1 (Ray's command turns a loopback node
    address into the machine's own), its Ray Client server on `client_port`, its session
    files in `temp_dir`."""

    client_port: int
    temp_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    def node_ids(self) -> set[str]:
        """The ids of the nodes this head's session started: Ray names files after them."""
        session = self.temp_dir / "session_latest"
        return {p.name.rsplit("_", 1)[1] for p in session.glob("gcs_server_port_*")}

    def ran_worker(self, pid: int) -> bool:
        """Whether a Ray worker of this session ran as process `pid`."""
        logs = self.temp_dir / "session_latest" / "logs"
        return any(logs.glob(f"python-core-worker-*_{pid}.log"))


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("needs Ray; install it with `pip install 'ray[default]>=2.50'`")
    # Unix sockets live under the temporary directory: its path must stay short.
    temp_dir = Path(tempfile.mkdtemp(prefix="edgestack-ray-"))
    client_port = free_port()
    ports = {
        "--port": free_port(),
        "--ray-client-server-port": client_port,
        "--dashboard-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
    }
    # Ray's workers import the job's code: the edgestack under test, not another installed one.
    source = str(Path(edgestack.__file__).parents[1])
    env = os.environ | {"PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    with open(temp_dir / "head.log", "ab") as log:
        process = subprocess.Popen(
            [
                # Ray's command of this interpreter, also where its folder is not on PATH.
                sys.executable,
                "-m",
                "ray.scripts.scripts",
                "start",
                "--head",
                "--block",
                *(str(item) for pair in ports.items() for item in pair),
                "--num-cpus",
                "1",
                "--include-dashboard",
                "false",
                "--object-store-memory",
                str(80 * 1024 * 1024),
                "--temp-dir",
                str(temp_dir),
                "--disable-usage-stats",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            # A group of its own: its daemons are stopped together, and no other Ray is.
            start_new_session=True,
        )
    head = RayHead(client_port, temp_dir, process)
    try:

        def up() -> bool:
            if process.poll() is not None:
                log = (temp_dir / "head.log").read_text()[-2000:]
                raise RuntimeError(f"the Ray head exited with {process.returncode}:\n{log}")
            return _accepts(client_port)

        wait_until(up, timeout_s=60, what="the Ray head's client server")
        yield head
    finally:
        _stop_group(process)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the head and every process of its group: SIGTERM, then SIGKILL what is left; the
    head keeps nothing a test needs afterwards."""
    for sig, grace_s in ((signal.SIGTERM, 3), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: process.poll() is not None and not _group_alive(process.pid),
                timeout_s=grace_s,
                what="the Ray head to stop",
            )
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def fleet(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    with LocalFleet(tmp_path_factory.mktemp("ray-hub"), []) as fleet:
        # Another name for the hub than the worker's own: the tasks use the one they are given.
        env = {
            "EDGESTACK_HUB_JOBS": ray_head.address,
            "EDGESTACK_HUB_JOBS_HUB_URL": fleet.hub_url.replace("127.0.0.1", "localhost"),
        }
        fleet.start_hub(env=env)
        _upload(fleet, "motors")
        yield fleet


def _ended(fleet: LocalFleet, job_id: int) -> JobView | None:
    job = fleet.client.job(job_id)
    return job if job.state in ("succeeded", "failed", "cancelled") else None


def _runner(fleet: LocalFleet, job_id: int) -> tuple[str, int, str] | None:
    """The Ray node, worker pid and hub URL the job's task says it runs with."""
    for line in fleet.client.job_log(job_id):
        if found := RUNNER.search(line):
            return found[1], int(found[2]), found[3]
    return None


def test_a_training_job_runs_as_a_ray_task_and_registers_its_model(
    fleet: LocalFleet, ray_head: RayHead
) -> None:
    submitted = fleet.client.submit_job(TrainRequest(dataset="motors", model="decision_tree"))
    done = wait_until(
        lambda: _ended(fleet, submitted.id), timeout_s=120, what="the job to end", every_s=0.5
    )
    runner = _runner(fleet, submitted.id)
    models = fleet.client.models()

    assert done.state == "succeeded", done.error
    assert done.result is not None and done.result["metrics"]["accuracy"] >= 0.9
    assert [(m.name, m.digest) for m in models] == [("motors", done.result["model"]["digest"])]
    assert runner is not None, "the job's log does not say where it ran"
    node, pid, hub_url = runner
    assert node in ray_head.node_ids()
    assert ray_head.ran_worker(pid)
    assert hub_url == f"http://localhost:{fleet.port}"


def _slow_job_on_ray(fleet: LocalFleet) -> tuple[int, int]:
    """A job still running when the test acts on it, and its Ray worker's pid."""
    # auto tries every classifier for up to this long.
    job = fleet.client.submit_job(TrainRequest(dataset="motors", model="auto", budget_s=600))
    _, pid, _ = wait_until(
        lambda: _runner(fleet, job.id), timeout_s=60, what="the job's Ray task to start"
    )
    return job.id, pid


def test_a_cancel_kills_the_jobs_ray_worker_and_a_dead_worker_fails_its_job(
    fleet: LocalFleet, ray_head: RayHead
) -> None:
    cancelled_id, cancelled_pid = _slow_job_on_ray(fleet)
    cancelled = fleet.client.cancel_job(cancelled_id)
    wait_until(
        lambda: not Path(f"/proc/{cancelled_pid}").exists(),
        timeout_s=30,
        what="the Ray worker running the cancelled job to be killed",
    )
    died_id, died_pid = _slow_job_on_ray(fleet)
    os.kill(died_pid, signal.SIGKILL)  # as when its node goes down
    died = wait_until(lambda: _ended(fleet, died_id), timeout_s=30, what="the job to fail")

    assert cancelled.state == "cancelled"
    assert fleet.client.job(cancelled_id).state == "cancelled"
    assert ray_head.ran_worker(cancelled_pid)
    assert died.state == "failed" and died.error is not None
    assert ray_head.address in died.error and "died" in died.error


def test_a_federated_job_is_refused_on_ray_with_the_fix(
    fleet: LocalFleet, ray_head: RayHead
) -> None:
    with pytest.raises(HubError) as refused:
        fleet.client.submit_job(FederatedRequest(dataset="motors", to=["all"]))

    assert refused.value.status == 409
    assert "--jobs local" in str(refused.value) and ray_head.address in str(refused.value)


def test_jobs_fail_naming_a_cluster_nobody_listens_on_and_the_worker_goes_on(
    tmp_path: Path,
) -> None:
    address = f"ray://127.0.0.1:{free_port()}"
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub(env={"EDGESTACK_HUB_JOBS": address})
        first, second = (
            fleet.client.submit_job(TrainRequest(dataset="motors", model="decision_tree"))
            for _ in range(2)
        )
        ended = [
            wait_until(partial(_ended, fleet, job.id), timeout_s=60, what=f"job {job.id} to end")
            for job in (first, second)
        ]

    for job in ended:
        assert job.state == "failed"
        assert job.error is not None
        assert address in job.error and "ray start --head" in job.error
