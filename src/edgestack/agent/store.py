"""The agent's durable local state: credentials, counters and the outbox.

One SQLite file, readable by its owner only: it holds the device token. Everything
the device must send goes through the outbox first, so the hot path never waits on
the network and a dead hub costs nothing but disk. The outbox is bounded: when full
it drops its oldest telemetry, then its oldest samples, never events, and counts what
it dropped. A message the hub will never take moves to the dead-letter table with
the hub's reason, also counted; that table keeps only the newest few, for a person to read.
"""

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalStore", "Pending"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL
);
"""

# Dropped first to last when the outbox is full; events are never dropped. Windows sent for
# review can be asked for again; labelled samples cannot be collected again.
_DROP_ORDER = ("telemetry", "windows", "samples")


@dataclass(frozen=True)
class Pending:
    id: int
    kind: str
    body: bytes


class LocalStore:
    """Thread-safe: the hot path's worker writes while the uplink reads and acknowledges."""

    def __init__(
        self, path: Path, *, max_outbox_bytes: int = 64 * 1024 * 1024, keep_dead_letters: int = 100
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created owner-only before SQLite opens it; its -wal and -shm files take this mode too.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._max_outbox_bytes = max_outbox_bytes
        self._keep_dead_letters = keep_dead_letters
        # Summed once here, then kept up to date, so no enqueue reads the whole table.
        self._outbox_bytes = int(
            self._db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM outbox").fetchone()[0]
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._get(key)

    def set(self, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def enqueue(self, kind: str, body: bytes, *, items: int = 1) -> None:
        """Queue `body`, a message of `items` events or samples, to be sent."""
        with self._transaction():
            self._insert(kind, body)
            self._bump(f"enqueued.{kind}", items)

    def enqueue_numbered(self, kind: str, make_body: Callable[[int], bytes]) -> int:
        """Allocate the next sequence number of `kind` and enqueue the body made from it,
        in one transaction, so numbers have no gaps even across a crash."""
        with self._transaction():
            key = f"seq.{kind}"
            seq = int(self._get(key) or 0) + 1
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, str(seq)))
            self._insert(kind, make_body(seq))
        return seq

    def peek(self) -> Pending | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, body FROM outbox ORDER BY id LIMIT 1"
            ).fetchone()
        return None if row is None else Pending(int(row[0]), str(row[1]), bytes(row[2]))

    def ack(self, item: Pending) -> None:
        """The hub took `item`: it leaves the outbox."""
        with self._transaction():
            self._delete(item.id)

    def dead_letter(self, item: Pending, reason: str) -> None:
        """The hub will never take `item`: keep it aside with `reason`, out of the queue's way."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO dead_letter (id, kind, body, reason) VALUES (?, ?, ?, ?)",
                (item.id, item.kind, item.body, reason),
            )
            self._delete(item.id)
            self._bump("outbox.dead_lettered", 1)
            # Nothing resends them: a device the hub refuses for good must not fill its disk.
            self._db.execute(
                "DELETE FROM dead_letter WHERE id NOT IN "
                "(SELECT id FROM dead_letter ORDER BY id DESC LIMIT ?)",
                (self._keep_dead_letters,),
            )

    def dead_letters(self) -> list[tuple[Pending, str]]:
        """The newest of what the hub refused for good, oldest first, each with the hub's
        reason; `dead_lettered` counts them all."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, body, reason FROM dead_letter ORDER BY id"
            ).fetchall()
        return [(Pending(int(r[0]), str(r[1]), bytes(r[2])), str(r[3])) for r in rows]

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def enqueued(self, kind: str) -> int:
        """Events or samples of `kind` ever queued here: what the hub should hold of this
        device, less what was dropped or dead-lettered."""
        return int(self.get(f"enqueued.{kind}") or 0)

    def dropped(self) -> int:
        """Messages dropped because the outbox was full, since this store was created."""
        return int(self.get("outbox.dropped") or 0)

    def dead_lettered(self) -> int:
        """Messages the hub refused for good, since this store was created."""
        return int(self.get("outbox.dead_lettered") or 0)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            # The running total follows the rows: a transaction rolled back takes its change too.
            before = self._outbox_bytes
            try:
                with self._db:
                    self._db.execute("BEGIN")
                    yield
            except BaseException:
                self._outbox_bytes = before
                raise

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _bump(self, key: str, by: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, str(int(self._get(key) or 0) + by))
        )

    def _insert(self, kind: str, body: bytes) -> None:
        self._db.execute("INSERT INTO outbox (kind, body) VALUES (?, ?)", (kind, body))
        self._outbox_bytes += len(body)
        self._trim()

    def _delete(self, item_id: int) -> None:
        row = self._db.execute(
            "SELECT LENGTH(body) FROM outbox WHERE id = ?", (item_id,)
        ).fetchone()
        if row is not None:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
            self._outbox_bytes -= int(row[0])

    def _trim(self) -> None:
        dropped = 0
        for kind in _DROP_ORDER:
            while self._outbox_bytes > self._max_outbox_bytes:
                row = self._db.execute(
                    "SELECT id FROM outbox WHERE kind = ? ORDER BY id LIMIT 1", (kind,)
                ).fetchone()
                if row is None:
                    break
                self._delete(int(row[0]))
                dropped += 1
        if dropped:
            self._bump("outbox.dropped", dropped)
