"""Federated learning on the device: windows kept in local datasets that never leave it, and
the Flower client (a SuperNode) that trains on them for an aggregator.

Rows are added on the hot path's thread and only held in memory there; `KeptWindows.write`
puts them on disk, in a thread of its own, at most every `WRITE_EVERY_S`. A dataset holds
its newest `MAX_ROWS` rows, of one input spec. `FederatedClient` starts the SuperNode,
starts it again with a backoff whenever it exits, and stops it when told or cancelled.

Flower and torch are imported on first use, in a thread: an agent that takes no part in
federated learning never loads them.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgestack.bundle import InputSpec

if TYPE_CHECKING:
    from edgestack.federated import Node

__all__ = [
    "MAX_ROWS",
    "PID_FILE",
    "WRITE_EVERY_S",
    "FederatedClient",
    "KeptWindows",
    "kill_left_over",
]

log = logging.getLogger("edgestack.agent")

MAX_ROWS = 20_000
"""Rows a local dataset holds; the oldest are dropped first."""
WRITE_EVERY_S = 3.0
"""The longest a kept row waits in memory before it is on disk."""
PID_FILE = "client.pid"
"""The file in a client's workdir naming its SuperNode's pid while it runs."""

# A client that ran this long before it exited had worked: its next start waits little.
_HEALTHY_RUN_S = 60.0


class KeptWindows:
    """One local dataset: rows with their label names, of one input spec, kept in
    `root/<dataset>.npz` and written for the client to `root/<dataset>.windows.npz`.

    `add` and `write` may run on two threads at once."""

    def __init__(self, root: Path, dataset: str) -> None:
        self.dataset = dataset
        self.path = root / f"{_file_stem(dataset)}.npz"
        self.windows = self.windows_file(root, dataset)
        self._lock = threading.Lock()
        self._x = np.zeros((0, 0), dtype=np.float32)
        self._labels = np.zeros(0, dtype=str)
        self._spec: InputSpec | None = None
        self._pending: list[tuple[np.ndarray, str]] = []
        self._written_at = 0.0
        if self.path.exists():
            with np.load(self.path) as held:
                self._x, self._labels = held["x"], held["labels"]
                self._spec = InputSpec.model_validate_json(str(held["spec"]))
        # A restart between the two writes: the client's file is written again.
        self._dirty = len(self._labels) > 0 and not self.windows.exists()

    @staticmethod
    def windows_file(root: Path, dataset: str) -> Path:
        """Where the client reads local dataset `dataset` of `root`."""
        return root / f"{_file_stem(dataset)}.windows.npz"

    def __len__(self) -> int:
        with self._lock:
            return len(self._labels) + sum(len(rows) for rows, _ in self._pending)

    def add(self, rows: np.ndarray, label: str, spec: InputSpec) -> None:
        """Keep `rows`, each labelled `label`, computed by `spec`. Rows of a spec other than
        the dataset's start it afresh: rows of two specs cannot train one model."""
        if not len(rows):
            return
        with self._lock:
            if spec != self._spec:
                if self._spec is not None:
                    log.warning(
                        "local dataset %s: rows of another input spec come; its %d rows of the "
                        "one before are dropped",
                        self.dataset,
                        len(self._labels) + sum(len(r) for r, _ in self._pending),
                    )
                self._spec = spec
                self._x = np.zeros((0, len(rows[0])), dtype=np.float32)
                self._labels = np.zeros(0, dtype=str)
                self._pending = []
            self._pending.append((np.asarray(rows, dtype=np.float32), label))

    def due(self) -> bool:
        """Whether rows were added and the last write is `WRITE_EVERY_S` old."""
        return (self._dirty or bool(self._pending)) and (
            time.monotonic() - self._written_at >= WRITE_EVERY_S
        )

    def write(self) -> bool:
        """Put the rows added since the last write on disk, both files atomically; False when
        there were none. Rows a failed write did not put there are written by the next one.
        Blocking: run it off the event loop and the hot path."""
        with self._lock:
            if not self._pending and not self._dirty:
                return False
            self._merge()
            x, labels, spec = self._x, self._labels, self._spec
            self._dirty = False
            self._written_at = time.monotonic()
        assert spec is not None  # rows came, and with them their spec
        from edgestack.federated import save_local_windows  # Flower and torch: when needed

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _atomically(
                self.path,
                lambda tmp: np.savez(
                    tmp, x=x, labels=labels, spec=np.array(spec.model_dump_json())
                ),
            )
            _atomically(self.windows, lambda tmp: save_local_windows(tmp, x, labels.tolist(), spec))
        except BaseException:
            with self._lock:  # written again with the next write
                self._dirty = True
            raise
        return True

    def _merge(self) -> None:
        """Join the pending rows to the dataset, dropping the oldest beyond `MAX_ROWS`."""
        if not self._pending:
            return
        x = np.concatenate([self._x, *(rows for rows, _ in self._pending)])[-MAX_ROWS:]
        added = np.concatenate([np.full(len(rows), label) for rows, label in self._pending])
        labels = np.concatenate([self._labels.astype(added.dtype), added])[-MAX_ROWS:]
        self._x, self._labels, self._pending = x, labels, []


def _atomically(path: Path, write: Callable[[Path], object]) -> None:
    # numpy adds `.npz` to a name without it: the temporary name keeps the suffix.
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    write(tmp)
    os.replace(tmp, path)


def _file_stem(dataset: str) -> str:
    # Names may hold any printable character; a file's name may not. The digest keeps two
    # names that read alike once cleaned apart.
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", dataset)[:40]
    return f"{clean}-{hashlib.sha256(dataset.encode()).hexdigest()[:8]}"


class FederatedClient:
    """A Flower SuperNode for the aggregator `aggregator` (`host:port`), training on the
    windows file `windows`, its log and pid file in `workdir`: started by `run`, started
    again whenever it exits after a backoff from `backoff_s`'s first to its most, doubling,
    stopped when `run` is cancelled. `exited` is told why each time it exits."""

    def __init__(
        self,
        aggregator: str,
        windows: Path,
        workdir: Path,
        name: str,
        *,
        backoff_s: tuple[float, float] = (1.0, 30.0),
        exited: Callable[[str], None] | None = None,
    ) -> None:
        self.aggregator = aggregator
        self.windows = windows
        self.workdir = workdir
        self.name = name
        self.starts = 0
        self._first_s, self._max_s = backoff_s
        self._exited = exited

    @property
    def pid_file(self) -> Path:
        """Where the running SuperNode's pid is kept, for `kill_left_over`."""
        return self.workdir / PID_FILE

    async def run(self) -> None:
        """Keep the client running until cancelled; never raises for the client's sake."""
        delay = self._first_s
        while True:
            started = time.monotonic()
            try:
                why = await self._run_once()
            except Exception as exc:  # cannot start (Flower missing, a full disk): tried again
                why = f"could not start ({type(exc).__name__}: {exc})"
            ran = time.monotonic() - started
            delay = self._first_s if ran >= _HEALTHY_RUN_S else min(delay * 2, self._max_s)
            message = (
                f"the federated client for {self.aggregator} {why} after {ran:.0f} s; "
                f"starting it again in {delay:.0f} s"
            )
            log.warning("%s", message)
            if self._exited is not None:
                self._exited(message)
            await asyncio.sleep(delay)

    async def _run_once(self) -> str:
        """Start the client and wait until it exits; why it did."""
        starting = asyncio.ensure_future(asyncio.to_thread(self._start))
        try:
            node = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # Its thread starts it all the same: stopped once started.
            await asyncio.to_thread(self._stop, await starting)
            raise
        try:
            code = await asyncio.to_thread(node.process.wait)
        except asyncio.CancelledError:
            await asyncio.to_thread(self._stop, node)
            raise
        return f"exited with status {code} (its log: {node.log.name})"

    def _start(self) -> "Node":
        from edgestack.federated import start_client  # Flower and torch: loaded when needed

        self.workdir.mkdir(parents=True, exist_ok=True)
        kill_left_over(self.pid_file)
        node = start_client(self.aggregator, self.windows, self.workdir, name=self.name)
        self.pid_file.write_text(str(node.process.pid))
        self.starts += 1
        log.info("federated client started for %s (pid %d)", self.aggregator, node.process.pid)
        return node

    def _stop(self, node: "Node") -> None:
        node.stop()
        self.pid_file.unlink(missing_ok=True)
        log.info("federated client for %s stopped", self.aggregator)


def kill_left_over(pid_file: Path) -> None:
    """End the SuperNode a killed agent left running (its pid in `pid_file`) and the app
    processes it started; nothing when that process is gone or is no SuperNode."""
    try:
        pid = int(pid_file.read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    # A pid is reused once its process ends: only a SuperNode is ours to end.
    if b"flower-supernode" in command:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        log.info("ended the federated client a previous run left (pid %d)", pid)
    pid_file.unlink(missing_ok=True)
