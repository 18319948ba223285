"""The agent's durable local state: credentials, counters and the outbox.

One SQLite file. Everything the device must send goes through the outbox first,
so the hot path never waits on the network and a dead hub costs nothing but
disk; the outbox is bounded and drops its oldest messages (counted) when full.
"""

import sqlite3
import threading
from collections.abc import Callable
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
"""


@dataclass(frozen=True)
class Pending:
    id: int
    kind: str
    body: bytes


class LocalStore:
    def __init__(self, path: Path, *, max_outbox_bytes: int = 64 * 1024 * 1024) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._max_outbox_bytes = max_outbox_bytes

    def close(self) -> None:
        self._db.close()

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def enqueue(self, kind: str, body: bytes) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO outbox (kind, body) VALUES (?, ?)", (kind, body))
            self._trim()

    def enqueue_numbered(self, kind: str, make_body: Callable[[int], bytes]) -> int:
        """Allocate the next sequence number of `kind` and enqueue the body made from it,
        in one transaction, so numbers have no gaps even across a crash."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            key = f"seq.{kind}"
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            seq = 1 if row is None else int(row[0]) + 1
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, str(seq)))
            self._db.execute(
                "INSERT INTO outbox (kind, body) VALUES (?, ?)", (kind, make_body(seq))
            )
            self._trim()
        return seq

    def peek(self) -> Pending | None:
        row = self._db.execute("SELECT id, kind, body FROM outbox ORDER BY id LIMIT 1").fetchone()
        return None if row is None else Pending(int(row[0]), str(row[1]), bytes(row[2]))

    def ack(self, item: Pending) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (item.id,))

    def pending(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def dropped(self) -> int:
        return int(self.get("outbox.dropped") or 0)

    def _trim(self) -> None:
        total = self._db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM outbox").fetchone()[0]
        dropped = 0
        while total > self._max_outbox_bytes:
            row = self._db.execute(
                "SELECT id, LENGTH(body) FROM outbox ORDER BY id LIMIT 1"
            ).fetchone()
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row[0],))
            total -= row[1]
            dropped += 1
        if dropped:
            before = self._db.execute(
                "SELECT value FROM kv WHERE key = 'outbox.dropped'"
            ).fetchone()
            count = dropped + (int(before[0]) if before else 0)
            self._db.execute(
                "INSERT OR REPLACE INTO kv VALUES ('outbox.dropped', ?)", (str(count),)
            )
