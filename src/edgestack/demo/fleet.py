"""A hub and its agents as real processes on loopback, started and stopped as one."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from edgestack.client import HubClient

__all__ = ["LocalFleet", "wait_until"]

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout_s: float, what: str, every_s: float = 0.2) -> T:
    """Return the first truthy result of `check`; raise TimeoutError naming `what` if none comes."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalFleet:
    """`edgestack hub` and one `edgestack agent` per device, each its own process and log file.

    Tokens are fresh for every fleet. Leaving the `with` block, or `stop()`, ends every
    process it started, also on Ctrl-C."""

    def __init__(
        self, root: Path, devices: Sequence[str], *, seeds: Sequence[int] | None = None
    ) -> None:
        self.root = root
        self.devices = list(devices)
        self.seeds = dict(zip(self.devices, seeds or range(1, len(self.devices) + 1), strict=True))
        self.port = _free_port()
        self.hub_url = f"http://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_urlsafe(24)
        self.enrol_token = secrets.token_urlsafe(24)
        self._hub: subprocess.Popen[bytes] | None = None
        self._agents: dict[str, subprocess.Popen[bytes]] = {}
        self.client = HubClient(self.hub_url, admin_token=self.admin_token)

    def __enter__(self) -> "LocalFleet":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pids(self) -> list[int]:
        procs = [self._hub, *self._agents.values()]
        return [p.pid for p in procs if p is not None and p.poll() is None]

    def start_hub(self, *, timeout_s: float = 30, env: dict[str, str] | None = None) -> None:
        """Start the hub, with `env` added to its environment (its settings), and wait for it."""
        env = {
            **(env or {}),
            "EDGESTACK_ADMIN_TOKEN": self.admin_token,
            "EDGESTACK_ENROL_TOKEN": self.enrol_token,
        }
        args = ["hub", "--data-dir", str(self.root / "hub"), "--port", str(self.port)]
        self._hub = self._spawn("hub", args, env)
        wait_until(self._hub_up, timeout_s=timeout_s, what=f"the hub on {self.hub_url}")

    def _hub_up(self) -> bool:
        if self._hub is not None and self._hub.poll() is not None:
            log = (self.root / "hub.log").read_text()[-2000:]
            raise RuntimeError(f"the hub exited with {self._hub.returncode}:\n{log}")
        return self.client.healthy()

    def stop_hub(self) -> None:
        if self._hub is not None:
            _terminate([self._hub])
            self._hub = None

    def start_agents(self) -> None:
        for device in self.devices:
            self.start_agent(device)

    def start_agent(
        self,
        device: str,
        *,
        app: Path | None = None,
        serve_port: int | None = None,
        transport: str | None = None,
    ) -> None:
        """Start `device`'s agent on the simulated motor of its seed, or on the app spec `app`;
        with `serve_port`, as an edge node answering offloaded windows on that port; with
        `transport` (mqtt://host:port), reaching the hub through that broker."""
        args = [
            "agent",
            "--hub",
            self.hub_url,
            "--device-id",
            device,
            "--data-dir",
            str(self.root / device),
            "--seed",
            str(self.seeds[device]),
            *(["--app", str(app)] if app else []),
            *(["--serve", "--serve-port", str(serve_port)] if serve_port is not None else []),
            *(["--transport", transport] if transport else []),
        ]
        self._agents[device] = self._spawn(
            device, args, {"EDGESTACK_ENROL_TOKEN": self.enrol_token}
        )

    def kill_agent(self, device: str) -> None:
        """End `device`'s agent with SIGKILL, as a power cut would: nothing gets to clean up."""
        proc = self._agents.pop(device)
        proc.kill()
        proc.wait()

    def stop_agents(self) -> None:
        _terminate(list(self._agents.values()))
        self._agents.clear()

    def stop(self) -> None:
        self.stop_agents()
        self.stop_hub()
        self.client.close()

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "edgestack", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )


def _terminate(procs: list[subprocess.Popen[bytes]], grace_s: float = 10) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
