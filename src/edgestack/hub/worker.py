"""The hub's job worker: a process the hub starts and restarts, which claims queued jobs
through the hub's API and runs each in a process of its own, or as a task on a Ray cluster
(`jobs="ray://host:port"`), so a cancel can stop it.

A job runs the library workflows `edgestack train` and `edgestack optimize` run, with the
admin token, and registers what it makes through the API like any client: training never
runs in the hub's request path, nor in its process.

    Worker("http://127.0.0.1:8400", admin_token).start()   # as the hub does when it listens
"""

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from pydantic import TypeAdapter

from edgestack.client import HubClient, HubError
from edgestack.hub.ray_jobs import (
    RayCluster,
    RayRun,
    RayUnavailable,
    parse_jobs,
    refuses,
    where,
)
from edgestack.protocol import JobReport, JobRequest, JobView

__all__ = ["POLL_S", "Worker", "main", "run_worker"]

log = logging.getLogger("edgestack.hub.worker")

POLL_S = 1.0
"""How often the worker asks for queued jobs, and checks that a running one is not cancelled."""
_RESTART_S = 2.0  # between restarts of a worker that died, so one dying at once cannot spin
_STOP_S = 10.0
_REPORT_S = 0.5
_TOKEN = "EDGESTACK_ADMIN_TOKEN"
_REQUEST: TypeAdapter[JobRequest] = TypeAdapter(JobRequest)
_MAIN = (
    "import sys; from edgestack.hub.worker import main; "
    "main(sys.argv[1], int(sys.argv[2]), (sys.argv[3], int(sys.argv[4])), *sys.argv[5:])"
)
# Where a federated job's aggregator listens when the hub says nothing: loopback, a free port.
_LOOPBACK = ("127.0.0.1", 0)


class Worker:
    """The worker process of one hub, started once the hub listens and restarted whenever it
    exits until `stop`. A federated job's aggregator listens on `aggregator`, (host, port),
    the address devices dial (port 0: a free one per job). Jobs run where `jobs` says:
    `local`, or `ray://host:port`, a Ray cluster, whose tasks reach the hub at `jobs_hub_url`
    (default: `url`)."""

    def __init__(
        self,
        url: str,
        admin_token: str,
        *,
        aggregator: tuple[str, int] = _LOOPBACK,
        jobs: str = "local",
        jobs_hub_url: str | None = None,
    ) -> None:
        parse_jobs(jobs)  # refused here, in the hub, rather than in a worker restarted forever
        self._url = url
        self._jobs_hub_url = jobs_hub_url or url
        self._admin_token = admin_token
        self._aggregator = aggregator
        self._jobs = jobs
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        # Waits on the process rather than polling it: it blocks in `wait` until the exit.
        self._thread = threading.Thread(target=self._supervise, name="job-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop_soon(self) -> None:
        """Ask the worker to stop, and start no other; it stops the job it runs, which is
        marked failed when the hub next starts."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def stop(self) -> None:
        """`stop_soon`, then wait until the worker has stopped."""
        self.stop_soon()
        with self._lock:
            process = self._process
        if process is not None:
            try:
                process.wait(_STOP_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._thread.join(_STOP_S)

    def _supervise(self) -> None:
        env = os.environ | {_TOKEN: self._admin_token}
        host, port = self._aggregator
        command = [sys.executable, "-c", _MAIN, self._url, str(os.getpid()), host, str(port)]
        command += [self._jobs, self._jobs_hub_url]
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = subprocess.Popen(command, env=env)
            code = self._process.wait()
            if self._stopping.is_set():
                return
            log.warning("the job worker exited with code %s; starting another", code)
            self._stopping.wait(_RESTART_S)


def run_worker(
    url: str,
    admin_token: str,
    hub_pid: int,
    *,
    poll_s: float = POLL_S,
    aggregator: tuple[str, int] = _LOOPBACK,
    cluster: RayCluster | None = None,
    jobs_hub_url: str | None = None,
) -> None:
    """Claim and run queued jobs one at a time until SIGTERM, or until the hub, process
    `hub_pid`, is gone; a federated job's aggregator listens on `aggregator`. Each job runs
    in a process of its own, or with `cluster` as a task on that Ray cluster, which reaches
    the hub at `jobs_hub_url` (default: `url`)."""

    signal.signal(signal.SIGTERM, _unwind)
    # Ctrl-C in the hub's terminal reaches every process of its group: the hub stops this one.
    signal.signal(signal.SIGINT, _unwind)
    with HubClient(url, admin_token=admin_token) as client:
        while os.getppid() == hub_pid:
            try:
                job = client.claim_job() if client.jobs(state="queued", limit=1) else None
            except HubError as exc:
                # The hub may still be starting, or stopping: ask again.
                log.debug("cannot claim a job: %s", exc)
                job = None
            if job is None:
                time.sleep(poll_s)
                continue
            try:
                run = _start(url, admin_token, job, aggregator, cluster, jobs_hub_url or url)
            except (RayUnavailable, _Refused) as exc:
                # The job fails, not the worker: the next one may ask for something possible.
                _report(client, job.id, JobReport(outcome="failed", error=str(exc)))
                continue
            _supervise_job(client, job, run, hub_pid, poll_s)


class _Run(Protocol):
    """A job under way, in a local process or on a Ray cluster."""

    def wait(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the job to end; whether it has."""
        ...

    def stop(self) -> None:
        """End the job, still under way, now."""
        ...

    def failure(self) -> str | None:
        """Why the job ended without reporting how, or None."""
        ...


class _Refused(Exception):
    """A job that cannot run where this worker runs jobs; the message says why, and the fix."""


def _start(
    url: str,
    admin_token: str,
    job: JobView,
    aggregator: tuple[str, int],
    cluster: RayCluster | None,
    jobs_hub_url: str,
) -> _Run:
    request = job.job.model_dump(mode="json")
    if cluster is None:
        return _LocalRun(url, admin_token, job.id, request, aggregator)
    # Refused when submitted too; a job queued by a replica that runs jobs locally lands here.
    if (why := refuses(cluster, job.job.kind)) is not None:
        raise _Refused(why)
    return RayRun.start(cluster, _run_on_ray, jobs_hub_url, admin_token, job.id, request)


class _LocalRun:
    """A job in a process of its own, spawned, not forked: a fresh interpreter, free of this
    process's sockets and threads."""

    def __init__(
        self,
        url: str,
        admin_token: str,
        job_id: int,
        request: dict[str, Any],
        aggregator: tuple[str, int],
    ) -> None:
        self._process = multiprocessing.get_context("spawn").Process(
            target=_run_job,
            args=(url, admin_token, job_id, request, aggregator),
            name=f"job-{job_id}",
        )
        self._process.start()

    def wait(self, timeout_s: float) -> bool:
        self._process.join(timeout_s)
        return not self._process.is_alive()

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(_STOP_S)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()

    def failure(self) -> str | None:
        code = self._process.exitcode
        return (
            None if code in (0, -signal.SIGTERM) else f"the job's process exited with code {code}"
        )


def _supervise_job(client: HubClient, job: JobView, run: _Run, hub_pid: int, poll_s: float) -> None:
    ended = False
    try:
        while not (ended := run.wait(poll_s)):
            if os.getppid() != hub_pid:
                # The hub that claimed it is gone; the next one marks the job failed, and
                # must not find a model it did not ask for.
                log.info("the hub is gone: stopping job %d", job.id)
                break
            if not _still_running(client, job.id):
                log.info("job %d was cancelled: stopping it", job.id)
                break
    finally:
        # Also on SIGTERM: a job outlives neither its worker nor a cancel.
        if not ended:
            run.stop()
    failure = run.failure()
    if failure is not None:
        _report(client, job.id, JobReport(outcome="failed", error=failure))


def _still_running(client: HubClient, job_id: int) -> bool:
    try:
        return client.job(job_id).state == "running"
    except HubError:
        return True  # the hub did not answer: its word stands until it does


def _report(client: HubClient, job_id: int, news: JobReport) -> bool:
    """Tell the hub; False when the job is no longer running, so the work should stop."""
    try:
        client.report_job(job_id, news)
    except HubError as exc:
        if exc.status == 409:
            return False
        log.warning("job %d: cannot report to the hub: %s", job_id, exc)
    return True


def _run_job(
    url: str,
    admin_token: str,
    job_id: int,
    request: dict[str, Any],
    aggregator: tuple[str, int] = _LOOPBACK,
) -> None:
    """A job's process: run its workflow, telling the hub how far it is, then how it ended."""
    # Ctrl-C in the hub's terminal reaches this process too; its worker stops it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The worker stops a cancelled job with SIGTERM: unwound, so what the job started (a
    # federated job's aggregator, its devices' desired states) is stopped and undone.
    signal.signal(signal.SIGTERM, _unwind)
    _run_reporting(url, admin_token, job_id, request, aggregator)


class _HubUnreachable(Exception):
    """A job's Ray task cannot reach the hub that runs the job; the message says the fix."""


def _run_on_ray(url: str, admin_token: str, job_id: int, request: dict[str, Any]) -> None:
    """A job's Ray task: as a job's process, its first lines telling the node it runs on.
    Ray's worker keeps its own signal handlers: a cancel kills it by force. Raises
    _HubUnreachable when the node cannot reach the hub: the worker, which can, reports it."""
    with HubClient(url, admin_token=admin_token) as client:
        if not client.healthy():
            raise _HubUnreachable(
                f"{where()} cannot reach the hub at {url}; set EDGESTACK_HUB_JOBS_HUB_URL to "
                "the hub's URL as the Ray cluster's nodes reach it"
            )
    runner = f"{where()}, reaching the hub at {url}"
    _run_reporting(url, admin_token, job_id, request, _LOOPBACK, runner=runner)


def _run_reporting(
    url: str,
    admin_token: str,
    job_id: int,
    request: dict[str, Any],
    aggregator: tuple[str, int],
    *,
    runner: str | None = None,
) -> None:
    # Imported here, where the job runs: the worker itself stays light.
    from edgestack.learning.workflow import WorkflowError

    job = _REQUEST.validate_python(request)
    with HubClient(url, admin_token=admin_token) as client:
        pending: list[str] = []
        sent = [0.0]

        def progress(what: str, done: int, total: int, *, milestone: bool = False) -> None:
            fraction = min(1.0, done / total) if total > 0 else None
            pending.append((f"{what} ({done}/{total})" if total > 0 else what)[:2000])
            # A trainer may report every epoch: the hub hears at most every _REPORT_S, but
            # of a milestone (a hub event) at once.
            if not milestone and time.monotonic() - sent[0] < _REPORT_S and fraction != 1.0:
                return
            news = JobReport(
                progress=fraction,
                step=what[:200],
                lines=pending[-100:],
                milestone=what[:200] if milestone else None,
            )
            pending.clear()
            sent[0] = time.monotonic()
            if not _report(client, job_id, news):
                raise SystemExit(0)  # cancelled: the worker stops this process anyway

        started = [f"{job.kind}: {request}", *([f"running on {runner}"] if runner else [])]
        _report(client, job_id, JobReport(step="started", lines=started))
        result: dict[str, Any] | None
        try:
            result, error, last = _execute(
                client,
                job,
                progress,
                job_id=job_id,
                milestone=partial(progress, milestone=True),
                aggregator=aggregator,
            )
            lines = [last]
        except (WorkflowError, HubError) as exc:
            result, error, lines = None, str(exc), [f"error: {exc}"]
        # Any failure is the job's, told with its trace; the worker goes on.
        except Exception as exc:
            result, error = None, f"{type(exc).__name__}: {exc}"
            lines = traceback.format_exc().splitlines()[-100:]
        news = JobReport(
            outcome="succeeded" if error is None else "failed",
            result=result,
            error=None if error is None else error[:4000],
            lines=[*pending, *(line[:2000] for line in lines)][-100:],
        )
        _report(client, job_id, news)


def _unwind(signum: int, frame: FrameType | None) -> None:
    """A signal handler ending the process as an exit would, `finally` blocks run."""
    raise SystemExit(0)


def _execute(
    client: HubClient,
    job: JobRequest,
    progress: Callable[[str, int, int], None],
    *,
    job_id: int,
    milestone: Callable[[str, int, int], None],
    aggregator: tuple[str, int],
) -> tuple[dict[str, Any], str | None, str]:
    """Run `job`'s workflow: what it made, why it failed when it made nothing, and its last
    log line. `milestone` tells a step worth a hub event (a federated round)."""
    from edgestack.learning.split import Link
    from edgestack.learning.workflow import (
        evaluate_model,
        optimise_model,
        tradeoff_model,
        train_model,
    )

    result: dict[str, Any]
    if job.kind == "train":
        trained = train_model(client, job, progress)
        model = trained.model
        result = {"model": model.model_dump(mode="json"), "metrics": trained.result.metrics()}
        return result, None, f"registered {model.name} v{model.version}"
    if job.kind == "evaluate":
        evaluated = evaluate_model(client, job, progress)
        scores = evaluated.evaluation
        result = {
            "evaluated": evaluated.model.model_dump(mode="json"),
            "dataset": evaluated.dataset,
            "dataset_version": evaluated.dataset_version,
            "rows": evaluated.rows,
            "metrics": scores.metrics(),
            "confusion": scores.confusion,
        }
        line = f"accuracy {scores.accuracy:.4f} on {evaluated.rows} rows"
        return result, None, line
    if job.kind == "federated":
        from edgestack.learning.federated_job import Site, run_federated

        host, port = aggregator
        with tempfile.TemporaryDirectory(prefix=f"edgestack-job-{job_id}-") as workdir:
            federated = run_federated(
                client,
                job,
                job_id,
                Path(workdir),
                site=Site(host, port),
                progress=progress,
                milestone=milestone,
            )
        return federated.result(), None, federated.summary
    if job.kind == "tradeoff":
        progress(f"measuring {job.model} on {job.device}", 0, 1)
        traded = tradeoff_model(
            client,
            job.model,
            job.version,
            job.device,
            cloud=job.cloud,
            cloud_version=job.cloud_version,
            link=Link(bandwidth_bytes_per_s=job.bandwidth_kb_s * 1000, rtt_ms=job.rtt_ms),
            fractions=tuple(job.fractions),
            gate=job.gate,
            split=job.split,
            split_version=job.split_version,
        )
        progress(f"measured {len(traded.choices)} policies", 1, 1)
        line = f"{len(traded.choices)} policies measured on {traded.rows} held-out rows"
        return traded.summary(), None, line
    optimised = optimise_model(client, job, progress)
    made = optimised.model
    result = {
        "model": made.model_dump(mode="json") if made else None,
        "candidates": [
            {"name": v.candidate.name, "status": v.status, "reason": v.reason}
            for v in optimised.report.verdicts
        ],
    }
    if made is None:
        error = f"no candidate passes the gate and fits {job.profile}"
        return result, error, error
    return result, None, f"registered {made.name} v{made.version}"


def main(
    url: str,
    hub_pid: int,
    aggregator: tuple[str, int] = _LOOPBACK,
    jobs: str = "local",
    jobs_hub_url: str | None = None,
) -> None:
    """The worker process's entry: the admin token comes in the environment, never on the
    command line, where any user of the machine could read it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # A line for each poll of the hub would bury the hub's own log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run_worker(
        url,
        os.environ[_TOKEN],
        hub_pid,
        aggregator=aggregator,
        cluster=parse_jobs(jobs),
        jobs_hub_url=jobs_hub_url,
    )
