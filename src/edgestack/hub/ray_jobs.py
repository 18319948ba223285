"""Hub jobs on a Ray cluster: where the hub's setting `jobs` says to run them, and one job run
as a Ray task through Ray Client.

Ray Client (`ray.init("ray://host:port")`) rather than Ray's job submission API: the worker
already holds the job's life (its claim, its cancel, its report), and a task is what it needs
of the cluster: a function run on some node, cancelled by force when the job is. The job
submission API would add a second job record, a dashboard the cluster must expose, and a
driver process per job. Ray's nodes run the same `edgestack` release as the hub and reach
the hub through its API, as the local worker does.

    cluster = parse_jobs("ray://10.0.0.5:10001")   # None for "local"
    run = RayRun.start(cluster, job_function, *args)
"""

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_CLIENT_PORT",
    "RayCluster",
    "RayRun",
    "RayUnavailable",
    "parse_jobs",
    "refuses",
    "where",
]

DEFAULT_CLIENT_PORT = 10001
"""The port of Ray Client's server on a head started with Ray's defaults."""
_CONNECT_S = 5.0
_FIX = (
    "set --jobs (EDGESTACK_HUB_JOBS) to `local` or to `ray://HOST:PORT`, the address of the "
    "Ray Client server on the cluster's head (port 10001 by default)"
)


class RayUnavailable(Exception):
    """The Ray cluster cannot take a job; the message names its address and the fix."""


@dataclass(frozen=True)
class RayCluster:
    """A Ray cluster's head, as Ray Client reaches it."""

    host: str
    port: int = DEFAULT_CLIENT_PORT

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ray://{host}:{self.port}"


def parse_jobs(value: str) -> RayCluster | None:
    """Where jobs run, the hub's setting `jobs`: None for `local` (a process of the hub's
    worker), a `RayCluster` for `ray://host[:port]`. Raises ValueError saying the fix
    otherwise."""
    if value == "local":
        return None
    if not value.startswith("ray://"):
        raise ValueError(f"'{value[:100]}' is neither `local` nor a Ray address; {_FIX}")
    parts = urlsplit(value)
    try:
        port = parts.port
        if port == 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"'{value[:100]}' has no valid port; {_FIX}") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"'{value[:100]}' is not of the form ray://HOST:PORT; {_FIX}")
    return RayCluster(parts.hostname, DEFAULT_CLIENT_PORT if port is None else port)


def refuses(cluster: RayCluster, kind: str) -> str | None:
    """Why a job of `kind` cannot run on `cluster`, naming the fix; None when it can."""
    if kind != "federated":
        return None
    return (
        "a federated job runs Flower's aggregator, which devices dial on the hub's fl_host and "
        f"fl_port; a task on the Ray cluster at {cluster.address} would listen on a node the "
        "devices were not told of: run federated jobs on a hub started with --jobs local"
    )


def where() -> str:
    """Where the calling Ray task runs: its node and its worker's process."""
    import ray

    return f"Ray node {ray.get_runtime_context().get_node_id()}, worker pid {os.getpid()}"


class RayRun:
    """One function run as a Ray task on a cluster, through a Ray Client connection of its
    own: a cluster restarted between two jobs costs neither the worker nor the next job."""

    def __init__(self, cluster: RayCluster, ray: Any, ref: Any) -> None:
        self._cluster = cluster
        self._ray = ray
        self._ref = ref
        self._stopped = False
        self._lost: str | None = None

    @classmethod
    def start(cls, cluster: RayCluster, function: Callable[..., None], *args: Any) -> "RayRun":
        """Connect to `cluster` and submit `function(*args)`. Raises RayUnavailable, with the
        address and the fix, when the cluster does not answer. Turns off, for this process,
        Ray's start of a local cluster when called unconnected."""
        _check_port(cluster)
        # Ray starts a cluster of its own on this machine when called without a connection,
        # as after the cluster's was lost: this process only ever speaks to `cluster`.
        os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
        # Imported only here: a hub whose jobs run locally never loads Ray.
        import ray

        try:
            _connect(ray, cluster)
        except ConnectionError as exc:
            raise RayUnavailable(_unreachable(cluster, str(exc))) from None
        except Exception as exc:
            # Ray Client refuses a cluster of another Ray or Python version, for one.
            raise RayUnavailable(
                f"the Ray cluster at {cluster.address} refused the connection: {str(exc)[:1000]}"
            ) from None
        # No retry: a job whose worker died half-way must not register its model twice.
        task = ray.remote(num_cpus=1, max_retries=0)(function)
        return cls(cluster, ray, task.remote(*args))

    def wait(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the task to end; whether it has, or the connection to
        the cluster was lost (Ray Client gives up after trying again for 30 s)."""
        try:
            done, _ = self._ray.wait([self._ref], timeout=timeout_s)
        except ConnectionError as exc:
            self._lost = str(exc)
            return True
        return bool(done)

    def stop(self) -> None:
        """Cancel the task by force, its worker process killed, and disconnect."""
        self._stopped = True
        try:
            if self._lost is None:
                self._ray.cancel(self._ref, force=True)
        finally:
            self._ray.shutdown()

    def failure(self) -> str | None:
        """Why the task ended without its function returning, or None when it returned or
        was stopped; disconnects."""
        if self._stopped:
            return None
        try:
            if self._lost is not None:
                return (
                    f"the connection to the Ray cluster at {self._cluster.address} was lost "
                    f"({self._lost}); the job's task may have ended with it: submit it again"
                )
            self._ray.get(self._ref, timeout=_CONNECT_S)
            return None
        except Exception as exc:
            # A task's own exception comes wrapped, its message behind Ray's traceback.
            cause = getattr(exc, "cause", None) or exc
            first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            fix = (
                "; install this edgestack release on the cluster's nodes"
                if isinstance(cause, ImportError)
                else ""
            )
            return f"the job's Ray task on {self._cluster.address} failed: {first[:1000]}{fix}"
        finally:
            self._ray.shutdown()


def _connect(ray: Any, cluster: RayCluster) -> None:
    try:
        ray.init(cluster.address, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionAbortedError:
        # The head's client server failed to start this connection's server, which happens
        # now and then on a healthy head: once more before the job is failed.
        ray.init(cluster.address, logging_level=logging.WARNING, log_to_driver=False)


def _check_port(cluster: RayCluster) -> None:
    # Ray Client tries for 30 s before it gives up on an address nobody listens on.
    try:
        socket.create_connection((cluster.host, cluster.port), timeout=_CONNECT_S).close()
    except OSError as exc:
        raise RayUnavailable(_unreachable(cluster, str(exc))) from None


def _unreachable(cluster: RayCluster, why: str) -> str:
    return (
        f"the Ray cluster at {cluster.address} cannot be reached ({why}); start its head with "
        f"`ray start --head --ray-client-server-port {cluster.port}` where the hub can reach "
        "it, or run the hub with --jobs local"
    )
