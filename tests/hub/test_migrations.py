"""The hub's schema revisions against `tables.py`, and databases of other releases, on SQLite
and on PostgreSQL alike."""

import json
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from edgestack.hub import migrate
from edgestack.hub.errors import StartRefused
from edgestack.hub.store import Base, Database, devices, events, schema
from edgestack.hub.store.db import masked, sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, or a PostgreSQL database (skipped, saying
    how to install it, where PostgreSQL is missing)."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "hub.db")
    postgres_url: str = request.getfixturevalue("postgres_url")
    return postgres_url


def older_database(url: str, revision: str, *, before_revisions: bool = False) -> None:
    """The database at `url` at `revision`; without `alembic_version`, as releases before
    revisions made it, when `before_revisions`."""
    engine = create_engine(url)
    schema.upgrade(engine, to=revision)
    if before_revisions:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
    engine.dispose()


def execute(url: str, sql: str, *rows: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run `sql` on the database at `url` (once per row of parameters, if any) and commit;
    the rows it returns, if any."""
    engine = create_engine(url)
    with engine.begin() as connection:
        result = connection.execute(text(sql), list(rows) if rows else None)
        returned = [tuple(row) for row in result] if result.returns_rows else []
    engine.dispose()
    return returned


def tables(url: str) -> dict[str, list[tuple[str, str]]]:
    """Each table of the database at `url`, with its columns and their types."""
    engine = create_engine(url)
    found = inspect(engine)
    shape = {
        name: [(c["name"], str(c["type"])) for c in found.get_columns(name)]
        for name in found.get_table_names()
    }
    engine.dispose()
    return shape


def test_the_newest_revision_builds_exactly_the_tables_declared(url: str) -> None:
    database = Database(url)

    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    database.close()

    assert differences == [], (
        "tables.py and the schema revisions disagree; write the revision that makes "
        f"these changes (see edgestack.hub.store.schema): {differences}"
    )


def test_a_new_database_starts_at_the_newest_revision(url: str) -> None:
    database = Database(url)
    database.close()

    assert database.schema_change == schema.SchemaChange(before=None, after=schema.head())
    assert schema.revisions()[0] == schema.FIRST_REVISION


def test_a_database_made_before_revisions_is_taken_as_the_first_and_upgraded(url: str) -> None:
    older_database(url, schema.FIRST_REVISION, before_revisions=True)

    database = Database(url)
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


def test_migrate_says_from_which_revision_to_which(tmp_path: Path, url: str) -> None:
    older_database(url, schema.FIRST_REVISION)

    first = migrate(tmp_path, url)
    again = migrate(tmp_path, url)

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


def test_a_database_of_a_newer_release_is_refused_and_left_alone(url: str) -> None:
    older_database(url, schema.head())
    execute(url, "UPDATE alembic_version SET version_num = 'f00d'")
    tables_before = tables(url)

    with pytest.raises(StartRefused) as refused:
        Database(url)

    version = execute(url, "SELECT version_num FROM alembic_version")
    assert "schema revision f00d" in str(refused.value)
    assert "upgrade edgestack" in str(refused.value)
    shown = url.removeprefix("sqlite:///") if url.startswith("sqlite") else masked(url)
    assert shown in str(refused.value)
    assert version == [("f00d",)]
    assert tables(url) == tables_before


def test_every_revision_goes_back_and_up_again_keeping_what_the_older_schema_holds(
    url: str,
) -> None:
    database = Database(url)
    execute(
        url,
        "INSERT INTO devices (device_id, token_sha256, enrolled_at, last_seen, hardware,"
        " desired, desired_version, reported, telemetry) VALUES ('motor-1', 'x',"
        " '2025-01-01 00:00:00', NULL, '{}', '{}', 0, NULL, '{}')",
    )
    execute(
        url,
        "INSERT INTO events (device_id, batch_id, received_at, event) VALUES"
        " (:device_id, '', '2025-01-01 00:00:00', '{}')",
        {"device_id": "motor-1"},
        {"device_id": None},
    )

    schema.downgrade(database.engine, to=schema.FIRST_REVISION)
    kept = execute(url, "SELECT device_id FROM events")
    schema.downgrade(database.engine, to="base")
    left = list(tables(url))
    again = schema.upgrade(database.engine)
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    database.close()

    assert kept == [("motor-1",)]
    assert left == ["alembic_version"]
    assert (again.before, again.after) == (None, schema.head())
    assert differences == []


def test_twins_stored_with_the_old_default_rules_follow_their_app_and_overrides_stay(
    url: str,
) -> None:
    older_database(url, "0003")
    old_defaults = {
        "normal_label": "normal",
        "min_confidence": 0.7,
        "trigger_windows": 4,
        "clear_windows": 8,
    }
    override = {**old_defaults, "trigger_windows": 2}
    execute(
        url,
        "INSERT INTO devices VALUES (:device_id, :token, '2026-01-01 00:00:00', NULL, '{}', "
        ":desired, 1, NULL, '{}')",
        *(
            {
                "device_id": device_id,
                "token": "0" * 64,
                "desired": json.dumps({"rules": rules, "telemetry_interval_s": 5.0}),
            }
            for device_id, rules in (("motor-1", old_defaults), ("motor-2", override))
        ),
    )

    database = Database(url)
    with database.session() as session:
        desired = {d: devices.desired(session, d).rules for d in ("motor-1", "motor-2")}
    database.close()

    assert desired["motor-1"] is None
    assert desired["motor-2"] is not None and desired["motor-2"].trigger_windows == 2


def test_ids_go_past_32_bits_on_postgresql_as_on_sqlite(url: str) -> None:
    database = Database(url)
    with database.writer() as session:
        events.record(session, "store_corrupt", "before")
        session.commit()
    if url.startswith("postgresql"):
        execute(url, "SELECT setval(pg_get_serial_sequence('events', 'id'), 4294967296)")
    else:
        # SQLite gives the next row the largest id plus one.
        execute(url, "UPDATE events SET id = 4294967296")
    with database.writer() as session:
        events.record(session, "store_corrupt", "after")
        session.commit()
    with database.session() as session:
        stored = [(e.id, e.event.message) for e in events.since(session)]
    database.close()

    assert stored[-1] == (4294967297, "after")
