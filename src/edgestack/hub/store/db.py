"""The hub's database: one SQLite file in WAL mode, opened once per process."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, Dialect, Engine, Select, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from edgestack.hub.store import schema

__all__ = ["Base", "Database", "UTCDateTime", "Window", "utcnow"]

Q = TypeVar("Q", bound=Select[Any])


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; SQLite itself keeps no time zone."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the hub stores aware UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """Which rows a listing returns: ids above `after_id` and below `before_id`, oldest first
    or newest first, at most `limit`. The next page starts after (oldest first) or before
    (newest first) the last id of this one; a page shorter than `limit` is the last."""

    after_id: int = 0
    before_id: int | None = None
    newest_first: bool = False
    limit: int = 100

    def apply(self, query: Q, id_column: InstrumentedAttribute[int]) -> Q:
        query = query.where(id_column > self.after_id)
        if self.before_id is not None:
            query = query.where(id_column < self.before_id)
        order = id_column.desc() if self.newest_first else id_column.asc()
        return query.order_by(order).limit(self.limit)


class Database:
    """Sessions on the hub's SQLite file.

    Opening it brings its schema to the newest revision (`schema_change` says from which).
    `session()` reads a consistent snapshot. `writer()` takes SQLite's write lock when its
    transaction begins, so a read-modify-write in it cannot interleave with another writer
    (a deferred transaction that reads, then writes, fails outright when someone else
    committed in between, whatever the busy timeout).
    """

    def __init__(self, path: Path) -> None:
        self.engine = _engine(path)
        try:
            self.schema_change = schema.upgrade(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._reader() as session:
            yield session

    @contextmanager
    def writer(self) -> Iterator[Session]:
        """A session whose work is kept only if the caller commits."""
        with self._writer() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


def _engine(path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        # Sessions are used from FastAPI's worker threads, one thread at a time.
        connect_args={"check_same_thread": False},
        # As many as FastAPI's worker threads (40): a connection opened past the pool is
        # closed again after each use, and opening one costs more than the query it serves.
        pool_size=40,
        max_overflow=10,
    )
    event.listen(engine, "connect", _on_connect)
    turn = _WriterTurn()
    event.listen(engine, "begin", turn.begin)
    event.listen(engine, "commit", turn.end)
    event.listen(engine, "rollback", turn.end)
    event.listen(engine, "checkin", turn.checkin)
    return engine


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transactions away from the sqlite3 module, which begins them only before
    # writes; `_on_begin` issues BEGIN itself, as SQLAlchemy's documentation recommends.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
    finally:
        cursor.close()


class _WriterTurn:
    """Writers of this process queue for SQLite's write lock on a lock of their own.

    Left to SQLite, a writer that finds the lock taken sleeps in its busy handler, for up to
    100 ms at a time, and may wake long after the lock came free: under many concurrent
    writes the file sits idle between them. Here the next writer in line starts the moment
    the last commits. Writers of other processes (job workers) still meet the busy handler.
    """

    # A writer waiting this long goes on to SQLite's busy handler, as it did before: a
    # writer that waits on itself (a writer opened inside another on one thread) then fails
    # as SQLite says, rather than hanging.
    _WAIT_S = 10.0
    _HELD = "edgestack_writer_turn"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def begin(self, connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "IMMEDIATE" and self._lock.acquire(timeout=self._WAIT_S):
            connection.info[self._HELD] = True
        try:
            connection.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            self.end(connection)
            raise

    def end(self, connection: Connection) -> None:
        if connection.info.pop(self._HELD, False):
            self._lock.release()

    def checkin(self, _dbapi_connection: Any, record: Any) -> None:
        # A connection returned to the pool mid-transaction (its session was dropped) is
        # rolled back there, without a rollback event: its turn ends here.
        if record.info.pop(self._HELD, False):
            self._lock.release()
