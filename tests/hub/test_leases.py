"""Leases between hub processes on one database: two holders, each with its own engine on
one SQLite file or PostgreSQL database, as two replicas would be."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgestack.hub.store import Database, leases
from edgestack.hub.store.db import sqlite_url
from edgestack.hub.store.tables import LeaseRow


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Database, Database]]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "hub.db")
    else:
        url = request.getfixturevalue("postgres_url")
    first = Database(url)
    second = Database(url)
    yield first, second
    first.close()
    second.close()


def _take(database: Database, holder: str, ttl_s: float = 60) -> bool:
    with database.writer() as session:
        taken = leases.take(session, leases.CONTROLLER, holder, ttl_s)
        session.commit()
    return taken


def _holder(database: Database) -> str | None:
    with database.session() as session:
        row = session.get(LeaseRow, leases.CONTROLLER)
        return None if row is None else row.holder


def test_one_holder_at_a_time_and_the_holder_renews(
    databases: tuple[Database, Database],
) -> None:
    a, b = databases

    first = _take(a, "a")
    refused = _take(b, "b")
    renewed = _take(a, "a")

    assert (first, refused, renewed) == (True, False, True)
    assert _holder(b) == "a"


def test_a_lease_left_to_expire_goes_to_the_next_taker(
    databases: tuple[Database, Database],
) -> None:
    a, b = databases
    assert _take(a, "a")
    assert not _take(b, "b")
    # `a` renews for a moment only, then stops, as a killed replica would.
    assert _take(a, "a", ttl_s=0.1)

    deadline = time.monotonic() + 5
    while not _take(b, "b"):
        assert time.monotonic() < deadline, "the expired lease never went to b"
        time.sleep(0.02)

    assert _holder(a) == "b"
    assert not _take(a, "a")


def test_a_released_lease_goes_at_once_and_only_its_holder_releases_it(
    databases: tuple[Database, Database],
) -> None:
    a, b = databases
    assert _take(a, "a")

    with b.writer() as session:
        leases.release(session, leases.CONTROLLER, "b")
        session.commit()
    kept = _holder(a)
    with a.writer() as session:
        leases.release(session, leases.CONTROLLER, "a")
        session.commit()

    assert kept == "a"
    assert _take(b, "b")
    assert _holder(a) == "b"


def test_leases_of_different_names_are_held_apart(
    databases: tuple[Database, Database],
) -> None:
    a, b = databases
    assert _take(a, "a")

    with b.writer() as session:
        webhooks = leases.take(session, leases.WEBHOOKS, "b", 60)
        session.commit()

    assert webhooks
    assert not _take(b, "b")


def test_holder_ids_differ_between_calls() -> None:
    assert leases.holder_id() != leases.holder_id()
