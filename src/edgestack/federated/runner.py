"""A federation of real processes on this machine, through Flower's own deployment engine: one
SuperLink (the hub's side), one SuperNode per client (each device's side), and the run
submitted with `flwr run`, as the hub will submit it and each agent will supervise its node.

    with Federation(workdir, config) as federation:
        for path in device_window_files:
            federation.add_client(path)
        result = federation.run(on_round=print)
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import tomli_w

from edgestack.federated.client import DATA_PATH
from edgestack.federated.config import FederatedConfig
from edgestack.federated.server import PROGRESS_PATH, RESULT_PATH, FederatedResult, RoundRecord

__all__ = ["Federation", "Node", "run_federation", "start_client"]

# How long a started SuperLink may take to listen: it imports FastAPI and opens its database.
_START_TIMEOUT = 60.0
# How often a run is looked at for rounds that ended.
_ROUND_POLL_S = 0.5


@dataclass(frozen=True)
class Node:
    """A process this federation started, with the file its output goes to."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """End the process and the app processes it started at once, as a crash would: no
        goodbye reaches the SuperLink."""
        self._signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Ask the process and its children to end; kill them if they have not in 10 s."""
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def _signal(self, number: int) -> None:
        # The whole group, even once the process itself has ended: the app processes Flower
        # started may outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, number)


class Federation:
    """A SuperLink, the SuperNodes added to it and the runs submitted to it; every process it
    started ends when the `with` block does. It listens on `host` (loopback unless devices
    elsewhere must reach it: the address they dial) and `port` (0: a free one)."""

    def __init__(
        self, workdir: Path, config: FederatedConfig, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.nodes: list[Node] = []
        self._host = host
        self._port = port or _free_port()
        self._run: Node | None = None
        self.superlink: Node | None = None

    def __enter__(self) -> Self:
        self._write_connection()
        self.superlink = _spawn(
            self.workdir,
            "superlink",
            "flower-superlink",
            "--insecure",
            "--disable-runtime-dependency-installation",
            f"--host={self._host}",
            f"--port={self._port}",
        )
        try:
            _wait_listening(self._host, self._port, self.superlink)
        except BaseException:
            self.superlink.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for node in [*self.nodes, self._run, self.superlink]:
            if node is not None:
                node.stop()

    @property
    def address(self) -> str:
        """Where the SuperLink listens, `host:port`."""
        return f"{self._host}:{self._port}"

    def add_client(self, windows: Path, *, via: str | None = None) -> Node:
        """Start a SuperNode whose client trains on the windows file `windows` (written by
        `save_local_windows`); it joins the next round after it connects. `via` is the
        address it dials when something (a proxy, a tunnel) stands before the SuperLink."""
        name = f"client-{len(self.nodes)}"
        node = start_client(via or self.address, windows, self.workdir, name=name)
        self.nodes.append(node)
        return node

    def submit(self) -> Node:
        """Submit the run; `wait` returns its result."""
        app = self.workdir / "app"
        app.mkdir(exist_ok=True)
        result = self.workdir / "result.npz"
        result.unlink(missing_ok=True)
        self._progress.unlink(missing_ok=True)
        project = {
            "project": {"name": "edgestack-federated", "version": "1.0.0", "dependencies": []},
            "tool": {
                "flwr": {
                    "app": {
                        "publisher": "edgestack",
                        "components": {
                            "serverapp": "edgestack.federated.server:server_app",
                            "clientapp": "edgestack.federated.client:client_app",
                        },
                        "config": {
                            **self.config.to_run_config(),
                            RESULT_PATH: str(result),
                            PROGRESS_PATH: str(self._progress),
                        },
                    }
                }
            },
        }
        (app / "pyproject.toml").write_text(tomli_w.dumps(project))
        self._run = _spawn(self.workdir, "run", "flwr", "run", str(app), "local", "--stream")
        return self._run

    def wait(
        self,
        timeout: float | None = None,
        on_round: Callable[[RoundRecord], None] | None = None,
    ) -> FederatedResult:
        """The submitted run's result, once its last round is aggregated, handing each
        round's record to `on_round` as the round ends; a `RuntimeError` with the end of the
        run's log if it fails or outlasts `timeout` (by default every round timing out with a
        minute more for the processes Flower starts, plus a minute)."""
        if self._run is None:
            raise RuntimeError("no run submitted; call submit() first")
        limit = timeout or self.config.rounds * (self.config.round_timeout + 60) + 60
        deadline = time.monotonic() + limit
        told = 0
        while True:
            try:
                self._run.process.wait(timeout=_ROUND_POLL_S)
                ended = True
            except subprocess.TimeoutExpired:
                ended = False
            rounds = self.rounds()
            for record in rounds[told:]:
                if on_round is not None:
                    on_round(record)
            told = len(rounds)
            if ended:
                break
            if time.monotonic() > deadline:
                self._run.stop()
                raise RuntimeError(f"the run took over {limit:.0f} s\n{_tail(self._run.log)}")
        result = self.workdir / "result.npz"
        if self._run.process.returncode != 0 or not result.exists():
            raise RuntimeError(f"the run gave no result\n{_tail(self._run.log)}")
        return FederatedResult.load(result)

    def run(
        self,
        timeout: float | None = None,
        on_round: Callable[[RoundRecord], None] | None = None,
    ) -> FederatedResult:
        """Submit the run and wait for its result, as `wait` does."""
        self.submit()
        return self.wait(timeout, on_round)

    def rounds(self) -> list[RoundRecord]:
        """The records of the submitted run's rounds that have ended so far."""
        try:
            text = self._progress.read_text()
        except FileNotFoundError:
            return []
        # The last line may be half written: the rounds told are those whole so far.
        whole = text[: text.rfind("\n") + 1]
        return [RoundRecord(**json.loads(line)) for line in whole.splitlines()]

    @property
    def _progress(self) -> Path:
        return self.workdir / "progress.jsonl"

    def _write_connection(self) -> None:
        home = self.workdir / "flwr"
        home.mkdir(parents=True, exist_ok=True)
        connection = {
            "superlink": {
                "default": "local",
                "local": {"address": self.address, "insecure": True},
            }
        }
        (home / "config.toml").write_text(tomli_w.dumps(connection))


def start_client(superlink: str, windows: Path, workdir: Path, *, name: str = "client") -> Node:
    """Start a SuperNode that joins the SuperLink at `superlink` (`host:port`, plain HTTP)
    and whose client trains on the windows file `windows`; it keeps retrying until the
    SuperLink answers. Its log is `workdir/logs/<name>.log`."""
    return _spawn(
        workdir,
        name,
        "flower-supernode",
        "--insecure",
        f"--superlink={superlink}",
        f"--port={_free_port()}",
        f"--node-config={DATA_PATH}={_toml_string(windows.resolve())}",
    )


def run_federation(windows: list[Path], config: FederatedConfig, workdir: Path) -> FederatedResult:
    """Federated training over one client per windows file, every process on this machine."""
    with Federation(workdir, config) as federation:
        for path in windows:
            federation.add_client(path)
        return federation.run()


def _spawn(workdir: Path, name: str, *command: str) -> Node:
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    log = workdir / "logs" / f"{name}.log"
    env = {
        **os.environ,
        # Flower starts its app processes by command name: those next to this interpreter.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # Where Flower keeps its connection settings and installed apps.
        "FLWR_HOME": str(workdir / "flwr"),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
            # Its own process group, so stopping it stops the app processes Flower starts.
            start_new_session=True,
        )
    return Node(process, log)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(host: str, port: int, node: Node) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise RuntimeError(f"the SuperLink exited\n{_tail(node.log)}")
        with socket.socket() as probe:
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the SuperLink did not listen within {_START_TIMEOUT:.0f} s")


def _toml_string(path: Path) -> str:
    # Flower parses node-config values as TOML: a path is a quoted string.
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
