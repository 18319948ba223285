"""Opening the hub's database from its URL, and what its writers promise on PostgreSQL."""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from conftest import Postgres, free_port
from edgestack.hub.errors import StartRefused
from edgestack.hub.store import Database, schema
from edgestack.hub.store.db import _WriterTurn, sqlite_url


def test_an_unreachable_database_is_refused_naming_it_without_its_password() -> None:
    pytest.importorskip("psycopg")
    port = free_port()
    url = f"postgresql+psycopg://hub:s3cret@127.0.0.1:{port}/fleet"

    with pytest.raises(StartRefused) as refused:
        Database(url)

    message = str(refused.value)
    assert f"postgresql+psycopg://hub:***@127.0.0.1:{port}/fleet cannot be opened" in message
    assert "s3cret" not in message
    assert "--database-url" in message


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("mysql://hub:s3cret@db/fleet", "names mysql, which the hub cannot use"),
        ("postgresql+nodriver://hub:s3cret@db/fleet", "needs a driver that is not installed"),
        ("not a url", "cannot be read"),
    ],
)
def test_a_url_the_hub_cannot_use_is_refused_saying_what_it_takes(url: str, named: str) -> None:
    with pytest.raises(StartRefused) as refused:
        Database(url)

    assert named in str(refused.value)
    assert "postgresql+psycopg://user:password@host:port/name" in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_a_writer_waits_for_the_one_before_and_reads_what_it_committed(
    postgres_url: str,
) -> None:
    database = Database(postgres_url)
    with database.writer() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
        session.commit()

    def add_one() -> None:
        with database.writer() as session:
            n = session.execute(text("SELECT n FROM counter")).scalar_one()
            session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
            session.commit()

    with database.writer() as first:
        n = first.execute(text("SELECT n FROM counter")).scalar_one()
        second = threading.Thread(target=add_one)
        second.start()
        _wait_for_a_writer_waiting(database)
        first.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        first.commit()
    second.join(timeout=30)
    with database.session() as session:
        final = session.execute(text("SELECT n FROM counter")).scalar_one()
    database.close()

    assert not second.is_alive()
    # Had the second read before the first committed, one increment would be lost.
    assert final == 2


def test_a_writer_kept_waiting_past_its_turn_says_so_and_goes_on_to_sqlites_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_WriterTurn, "_WAIT_S", 0.2)
    database = Database(sqlite_url(tmp_path / "hub.db"))
    with database.writer() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
        session.commit()
    holding = threading.Event()

    def hold_the_turn() -> None:
        with database.writer() as session:
            session.execute(text("UPDATE counter SET n = n + 1"))
            holding.set()
            time.sleep(1.0)
            session.commit()

    holder = threading.Thread(target=hold_the_turn)
    holder.start()
    assert holding.wait(timeout=30)
    # Past its turn's wait, SQLite's busy handler holds it until the holder commits.
    with (
        caplog.at_level(logging.WARNING, logger="edgestack.hub.store"),
        database.writer() as session,
    ):
        session.execute(text("UPDATE counter SET n = n + 1"))
        session.commit()
    holder.join(timeout=30)
    with database.session() as session:
        final = session.execute(text("SELECT n FROM counter")).scalar_one()
    database.close()

    assert final == 2
    assert any("waited 0.2 s for its turn" in record.getMessage() for record in caplog.records)


def _wait_for_a_writer_waiting(database: Database) -> None:
    deadline = time.monotonic() + 30
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    with database.engine.connect() as connection:
        while connection.execute(query).scalar_one() == 0:
            connection.rollback()
            assert time.monotonic() < deadline, "the second writer never waited for the lock"
            time.sleep(0.01)


def test_hubs_starting_together_on_a_new_database_migrate_it_once(postgres_url: str) -> None:
    with ThreadPoolExecutor(3) as pool:
        opened = list(pool.map(Database, [postgres_url] * 3))
    for database in opened:
        database.close()

    changes = sorted((d.schema_change.before or "") for d in opened)
    assert changes == ["", schema.head(), schema.head()]


def test_a_database_the_server_lacks_is_refused_naming_it(postgres_server: Postgres) -> None:
    url = postgres_server.url("nowhere")

    with pytest.raises(StartRefused) as refused:
        Database(url)

    assert 'database "nowhere" does not exist' in str(refused.value)
    assert "the URL names a user, password and database it has" in str(refused.value)
