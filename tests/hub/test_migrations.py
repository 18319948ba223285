"""The hub's schema revisions against `tables.py`, and databases of other releases."""

import json
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from edgestack.hub import migrate
from edgestack.hub.errors import StartRefused
from edgestack.hub.store import Base, Database, devices, events, schema
from edgestack.hub.store.db import sqlite_url


def older_database(path: Path, revision: str, *, before_revisions: bool = False) -> None:
    """A database at `revision`; without `alembic_version`, as releases before revisions made
    it, when `before_revisions`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    schema.upgrade(engine, to=revision)
    engine.dispose()
    if before_revisions:
        with sqlite3.connect(path) as db:
            db.execute("DROP TABLE alembic_version")


def test_the_newest_revision_builds_exactly_the_tables_declared(tmp_path: Path) -> None:
    database = Database(sqlite_url(tmp_path / "hub.db"))

    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    database.close()

    assert differences == [], (
        "tables.py and the schema revisions disagree; write the revision that makes "
        f"these changes (see edgestack.hub.store.schema): {differences}"
    )


def test_a_new_database_starts_at_the_newest_revision(tmp_path: Path) -> None:
    database = Database(sqlite_url(tmp_path / "hub.db"))
    database.close()

    assert database.schema_change == schema.SchemaChange(before=None, after=schema.head())
    assert schema.revisions()[0] == schema.FIRST_REVISION


def test_a_database_made_before_revisions_is_taken_as_the_first_and_upgraded(
    tmp_path: Path,
) -> None:
    older_database(tmp_path / "hub.db", schema.FIRST_REVISION, before_revisions=True)

    database = Database(sqlite_url(tmp_path / "hub.db"))
    with database.writer() as session:
        # Revision 0001 refused events about no device.
        events.record(session, "store_corrupt", "the hub's own event")
        session.commit()
    with database.session() as session:
        stored = events.since(session)
    database.close()

    assert database.schema_change == schema.SchemaChange(
        before=schema.FIRST_REVISION, after=schema.head(), adopted=True
    )
    assert [(e.device_id, e.event.message) for e in stored] == [(None, "the hub's own event")]


def test_migrate_says_from_which_revision_to_which(tmp_path: Path) -> None:
    older_database(tmp_path / "hub.db", schema.FIRST_REVISION)

    first = migrate(tmp_path)
    again = migrate(tmp_path)

    assert (first.before, first.after, first.adopted) == (
        schema.FIRST_REVISION,
        schema.head(),
        False,
    )
    assert f"{schema.FIRST_REVISION} upgraded to {schema.head()}" in str(first)
    assert (again.before, again.after) == (schema.head(), schema.head())


def test_a_data_dir_that_cannot_be_made_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    data_dir = tmp_path / "a-file" / "hub"

    with pytest.raises(StartRefused, match=f"data dir {data_dir} cannot be used: Not a directory"):
        migrate(data_dir)


def test_a_database_of_a_newer_release_is_refused_and_left_alone(tmp_path: Path) -> None:
    older_database(tmp_path / "hub.db", schema.head())
    with sqlite3.connect(tmp_path / "hub.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'f00d'")
        tables_before = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()

    with pytest.raises(StartRefused) as refused:
        Database(sqlite_url(tmp_path / "hub.db"))

    with sqlite3.connect(tmp_path / "hub.db") as db:
        version = db.execute("SELECT version_num FROM alembic_version").fetchall()
        tables_after = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert "schema revision f00d" in str(refused.value)
    assert "upgrade edgestack" in str(refused.value)
    assert str(tmp_path / "hub.db") in str(refused.value)
    assert version == [("f00d",)]
    assert tables_after == tables_before


def test_every_revision_goes_back_and_up_again_keeping_what_the_older_schema_holds(
    tmp_path: Path,
) -> None:
    database = Database(sqlite_url(tmp_path / "hub.db"))
    with sqlite3.connect(tmp_path / "hub.db") as db:
        db.execute(
            "INSERT INTO devices (device_id, token_sha256, enrolled_at, last_seen, hardware,"
            " desired, desired_version, reported, telemetry) VALUES ('motor-1', 'x',"
            " '2025-01-01 00:00:00', NULL, '{}', '{}', 0, NULL, '{}')"
        )
        db.executemany(
            "INSERT INTO events (device_id, batch_id, received_at, event) VALUES"
            " (?, '', '2025-01-01 00:00:00', '{}')",
            [("motor-1",), (None,)],
        )

    schema.downgrade(database.engine, to=schema.FIRST_REVISION)
    with sqlite3.connect(tmp_path / "hub.db") as db:
        kept = db.execute("SELECT device_id FROM events").fetchall()
    schema.downgrade(database.engine, to="base")
    with sqlite3.connect(tmp_path / "hub.db") as db:
        # sqlite_sequence, SQLite's own record of ids given, outlives the tables it served
        left = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    again = schema.upgrade(database.engine)
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    database.close()

    assert kept == [("motor-1",)]
    assert left == [("alembic_version",)]
    assert (again.before, again.after) == (None, schema.head())
    assert differences == []


def test_twins_stored_with_the_old_default_rules_follow_their_app_and_overrides_stay(
    tmp_path: Path,
) -> None:
    older_database(tmp_path / "hub.db", "0003")
    old_defaults = {
        "normal_label": "normal",
        "min_confidence": 0.7,
        "trigger_windows": 4,
        "clear_windows": 8,
    }
    override = {**old_defaults, "trigger_windows": 2}
    with sqlite3.connect(tmp_path / "hub.db") as db:
        for device_id, rules in (("motor-1", old_defaults), ("motor-2", override)):
            db.execute(
                "INSERT INTO devices VALUES (?, ?, '2026-01-01 00:00:00', NULL, '{}', ?, 1, "
                "NULL, '{}')",
                (device_id, "0" * 64, json.dumps({"rules": rules, "telemetry_interval_s": 5.0})),
            )

    database = Database(sqlite_url(tmp_path / "hub.db"))
    with database.session() as session:
        desired = {d: devices.desired(session, d).rules for d in ("motor-1", "motor-2")}
    database.close()

    assert desired["motor-1"] is None
    assert desired["motor-2"] is not None and desired["motor-2"].trigger_windows == 2
