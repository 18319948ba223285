"""Versions of the hub database's schema: Alembic revisions that ship inside this package, so
an installed hub upgrades its own data directory.

The hub upgrades its database when it starts; `edgestack hub migrate` does only that. A
database made before the hub kept revisions (its tables, no `alembic_version`) is taken as
revision 0001, the schema as first released. A database at a revision this release does not
know was made by a newer release and is refused, never touched.

To change the schema (add a column, a table, an index):

1. Change `tables.py`. A column added to a table that holds rows is nullable or has a
   `server_default`, or the migration fills it.
2. Add `migrations/versions/NNNN_what_it_does.py`, numbered after the newest one, with
   `revision = "NNNN"`, `down_revision` the newest one's `revision`, and `upgrade()` and
   `downgrade()` written with `alembic.op`. Change an existing table inside
   `with op.batch_alter_table("name") as batch:` (SQLite alters little in place; batch mode
   copies the table). Use plain SQLAlchemy types (`sa.DateTime()`, not the hub's own), and
   never import `tables.py`: a revision describes the schema as it was then, forever.
3. Run `tests/hub/test_migrations.py`: it fails, listing each difference, until upgrading a
   new database to the newest revision gives exactly the tables `tables.py` declares.

    op.add_column("devices", sa.Column("note", sa.String(200), nullable=True))
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import Connection

from edgestack.hub.errors import StartRefused

__all__ = ["FIRST_REVISION", "SchemaChange", "downgrade", "head", "revisions", "upgrade"]

FIRST_REVISION = "0001"
"""The schema as released before the hub kept revisions."""

_SCRIPTS = Path(__file__).with_name("migrations")
# The advisory lock a hub holds on PostgreSQL while it migrates: "migrate" in ASCII.
_MIGRATING = 0x6D696772617465


@dataclass(frozen=True)
class SchemaChange:
    """What `upgrade` did: from `before` (None for a new database) to `after`; `adopted` when
    the database was made before the hub kept revisions."""

    before: str | None
    after: str
    adopted: bool = False

    def __str__(self) -> str:
        if self.before is None:
            return f"new database at schema revision {self.after}"
        if self.before == self.after and not self.adopted:
            return f"schema revision {self.after} already; nothing to do"
        made = " (made before schema revisions were kept)" if self.adopted else ""
        return f"schema revision {self.before}{made} upgraded to {self.after}"


def head() -> str:
    """The newest revision this release knows."""
    revision = _scripts().get_current_head()
    assert revision is not None, "the package ships its revisions"
    return revision


def revisions() -> list[str]:
    """Every revision this release knows, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def upgrade(engine: Engine, *, to: str = "head") -> SchemaChange:
    """Bring the database on `engine` to revision `to` (the newest by default).

    Raises `StartRefused` when the database is at a revision this release does not know.
    """
    with _connect(engine) as connection:
        before = _current(connection)
        adopted = before is None and inspect(connection).has_table("devices")
        connection.rollback()
        known = revisions()
        if before is not None and before not in known:
            raise StartRefused(
                f"{_shown(engine)} is at schema revision {before}, which this release "
                f"of edgestack does not know (it knows {', '.join(known)}): a newer release "
                "made it; run that release, or upgrade edgestack"
            )
        config = _config(connection)
        if adopted:
            command.stamp(config, FIRST_REVISION)
            before = FIRST_REVISION
        command.upgrade(config, to)
        return SchemaChange(before=before, after=_done(connection), adopted=adopted)


def downgrade(engine: Engine, *, to: str) -> None:
    """Take the database on `engine` back to revision `to`, for an older release to run on;
    what later revisions can hold and earlier ones cannot (say, the hub's own events before
    0002) is lost."""
    with _connect(engine) as connection:
        command.downgrade(_config(connection), to)
        _done(connection)


@contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        if engine.dialect.name != "sqlite":
            # Hubs starting together on one database migrate it one after the other; the
            # lock is the connection's, so it outlasts the transactions migrating takes.
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATING})")
            connection.commit()
            try:
                # PostgreSQL alters tables in place, its foreign keys checked all along.
                yield connection
            finally:
                connection.rollback()
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATING})")
                connection.commit()
            return
        driver = connection.connection.driver_connection
        assert driver is not None, "a connection just opened"
        # Batch mode drops and recreates tables that others refer to, which SQLite allows
        # only with foreign keys off, a setting it ignores inside a transaction.
        driver.execute("PRAGMA foreign_keys=OFF")
        try:
            yield connection
        finally:
            driver.execute("PRAGMA foreign_keys=ON")


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def _current(connection: Connection) -> str | None:
    revision = MigrationContext.configure(connection).get_current_revision()
    connection.rollback()
    return revision


def _done(connection: Connection) -> str:
    """Commit the migration and return the revision it reached; fails when it left rows
    that refer to none, which foreign keys, off while migrating, did not stop."""
    connection.commit()
    if connection.dialect.name != "sqlite":
        return _current(connection) or "base"
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    connection.rollback()
    if violations:
        raise RuntimeError(f"the schema migration left rows pointing nowhere: {violations[:5]}")
    return _current(connection) or "base"


def _shown(engine: Engine) -> str:
    """The database as a message names it: a SQLite file by its path, any other by its URL
    with the password hidden."""
    if engine.dialect.name == "sqlite":
        return str(engine.url.database)
    return engine.url.render_as_string(hide_password=True)


def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(_SCRIPTS))
