"""The hub's database, opened once per process from a URL: a SQLite file in WAL mode by
default, or a PostgreSQL database that several hub processes may share."""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Engine,
    Integer,
    Select,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from edgestack.hub.errors import StartRefused
from edgestack.hub.store import schema

__all__ = ["Base", "Database", "UTCDateTime", "Window", "masked", "sqlite_url", "utcnow"]

log = logging.getLogger("edgestack.hub.store")

Q = TypeVar("Q", bound=Select[Any])


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    # PostgreSQL's INTEGER stops at 2**31 - 1, which a fleet's telemetry ids pass within weeks
    # and the API's 64-bit bounds at once; SQLite's holds 64 bits, and only a column spelled
    # INTEGER becomes its row id.
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        int: BigInteger().with_variant(Integer(), "sqlite")
    }


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, stored as UTC without a time zone (SQLite
    keeps none, and PostgreSQL's `timestamp without time zone` then reads the same)."""

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


def sqlite_url(path: Path) -> str:
    """The URL of the SQLite file at `path`."""
    return f"sqlite:///{path}"


def masked(url: str | URL) -> str:
    """`url` as messages and logs may show it: its password, if any, hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "an unreadable database URL"


class Database:
    """Sessions on the hub's database at `url`: `sqlite:///path` or
    `postgresql+psycopg://user:password@host:port/name`.

    Opening it brings its schema to the newest revision (`schema_change` says from which), or
    raises `StartRefused` naming the URL (password hidden) and the fix when it cannot be
    reached or read. `session()` reads a consistent snapshot. `writer()` serialises writers,
    so a read-modify-write in it cannot interleave with another writer: on SQLite it takes the
    write lock when its transaction begins (a deferred transaction that reads, then writes,
    fails outright when someone else committed in between, whatever the busy timeout); on
    PostgreSQL it takes one transaction-level advisory lock, shared by every hub process on
    the database, and then reads what writers before it committed. A lock rather than
    SERIALIZABLE isolation, whose conflicts would need every writer written as a retry loop;
    readers are never blocked either way.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        try:
            _reach(self.engine)
            self.schema_change = schema.upgrade(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._reader = sessionmaker(
            self.engine.execution_options(**_READER[self.engine.dialect.name]),
            expire_on_commit=False,
        )
        self._writer = sessionmaker(
            self.engine.execution_options(**_WRITER[self.engine.dialect.name]),
            expire_on_commit=False,
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


# Execution options of the sessions `Database` hands out, by dialect. PostgreSQL's readers
# see one snapshot for their whole transaction; its writers read committed data, so that
# what they read after taking the writers' lock includes the last writer's commit.
_READER: dict[str, dict[str, Any]] = {
    "sqlite": {},
    "postgresql": {"isolation_level": "REPEATABLE READ"},
}
_WRITER: dict[str, dict[str, Any]] = {
    "sqlite": {"sqlite_begin": "IMMEDIATE"},
    "postgresql": {"isolation_level": "READ COMMITTED", "hub_writer": True},
}

# The advisory lock key every hub writer on a PostgreSQL database takes: "edgestack" in ASCII.
_WRITER_LOCK = 0x6564676573746163


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StartRefused(
            f"database URL {masked(url)} cannot be read; give sqlite:///path/to/hub.db or "
            "postgresql+psycopg://user:password@host:port/name"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in _READER:
        raise StartRefused(
            f"database URL {masked(parsed)} names {backend}, which the hub cannot use; give "
            "sqlite:///path/to/hub.db or postgresql+psycopg://user:password@host:port/name"
        )
    try:
        if backend == "sqlite":
            return _sqlite(parsed)
        return _postgresql(parsed)
    except (ImportError, NoSuchModuleError) as exc:
        raise StartRefused(
            f"database URL {masked(parsed)} needs a driver that is not installed ({exc}); "
            "install psycopg (`pip install 'psycopg[binary]'`) and give "
            "postgresql+psycopg://user:password@host:port/name"
        ) from None


def _sqlite(url: URL) -> Engine:
    engine = create_engine(
        url,
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


def _postgresql(url: URL) -> Engine:
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=30,
        # A server restarted under a running hub leaves dead connections in the pool.
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10},
    )
    event.listen(engine, "begin", _on_pg_begin)
    return engine


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transactions away from the sqlite3 module, which begins them only before
    # writes; `_WriterTurn.begin` issues BEGIN itself, as SQLAlchemy's documentation recommends.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
    finally:
        cursor.close()


def _on_pg_begin(connection: Connection) -> None:
    if connection.get_execution_options().get("hub_writer", False):
        # Released by the transaction's commit or rollback, so never held past it.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_WRITER_LOCK})")


def _reach(engine: Engine) -> None:
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
        raise StartRefused(
            f"database {masked(engine.url)} cannot be opened: {reason[0]}; check that its "
            "server runs and that the URL names a user, password and database it has "
            "(--database-url, or EDGESTACK_HUB_DATABASE_URL)"
        ) from None


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
        if mode == "IMMEDIATE":
            if self._lock.acquire(timeout=self._WAIT_S):
                connection.info[self._HELD] = True
            else:
                log.warning(
                    "a writer waited %g s for its turn on the database; it goes on to "
                    "SQLite's own lock",
                    self._WAIT_S,
                )
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
