"""A hub's data directory: held by one process at a time while its SQLite file is the
database, shared by the replicas of a database server; its database at the newest schema.

What replicas share in it is safe to share: artifacts are content-addressed and written
aside, then renamed; signing keys are made and rotated under a lock of their own. What each
replica keeps in its own process: the long-polls and event streams it answers, its rate
limits (counted per process), its job worker and the cloud tier's loaded models.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from edgestack.hub.errors import StartRefused
from edgestack.hub.store import Database
from edgestack.hub.store.db import sqlite_url
from edgestack.hub.store.schema import SchemaChange

__all__ = ["DATABASE", "LOCK", "database_url", "hold", "migrate", "shared"]

DATABASE = "hub.db"
LOCK = "hub.lock"


def shared(url: str) -> bool:
    """Whether several hub processes may run on the database at `url`, and so on one data
    dir: any database server, but not a SQLite file, which one process writes."""
    try:
        return make_url(url).get_backend_name() != "sqlite"
    except ArgumentError:
        return False  # refused, naming the fix, when the hub opens it


@contextmanager
def hold(data_dir: Path, holder: str, *, alone: bool = True) -> Iterator[None]:
    """Hold `data_dir` for `holder` (who it is, for the message others get) until the block ends.

    An OS lock on `data_dir/hub.lock`, so it ends with the process however that ends: a hub
    killed with -9 leaves nothing stale behind. Raises `StartRefused`, naming the directory
    and who holds it, while another process does, or why, when it cannot be made or written.
    Not `alone`, for replicas sharing the directory, it is made and checked but not held.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StartRefused(
            f"data dir {data_dir} cannot be used: {exc.strerror}; give one this process may "
            "create and write (--data-dir, or EDGESTACK_HUB_DATA_DIR)"
        ) from None
    try:
        if alone:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held_by = os.read(fd, 500).decode(errors="replace").strip() or "another process"
                raise StartRefused(
                    f"data dir {data_dir} is held by {held_by}; one hub runs on a SQLite data "
                    "dir at a time: stop that one, give this one another (--data-dir, or "
                    "EDGESTACK_HUB_DATA_DIR), or run both on PostgreSQL (--database-url)"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, holder.encode())
        yield
    finally:
        # Closing the file releases the lock.
        os.close(fd)


def database_url(data_dir: Path, url: str | None) -> str:
    """The URL of the hub's database: `url` when given, else the SQLite file in `data_dir`."""
    return url if url is not None else sqlite_url(data_dir / DATABASE)


def migrate(data_dir: Path, url: str | None = None) -> SchemaChange:
    """Bring the hub's database (at `url`, else in `data_dir`) to the newest schema while no
    hub runs on `data_dir`."""
    with hold(data_dir, f"edgestack hub migrate (process {os.getpid()})"):
        database = Database(database_url(data_dir, url))
        database.close()
    return database.schema_change
