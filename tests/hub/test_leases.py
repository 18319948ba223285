"""Leases between hub processes on one database: two holders, each with its own engine on
one SQLite file or PostgreSQL database, as two replicas would be."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from edgestack.hub.store import Database, jobs, leases
from edgestack.hub.store.db import sqlite_url
from edgestack.hub.store.tables import JobRow, LeaseRow
from edgestack.protocol import JobSubmit

TRAIN = JobSubmit.model_validate(
    {"job": {"kind": "train", "dataset": "motors", "model": "decision_tree"}}
)


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


def test_only_jobs_claimed_by_a_stopped_replica_are_failed(
    databases: tuple[Database, Database],
) -> None:
    a, b = databases
    with a.writer() as session:
        assert leases.take(session, leases.replica("a"), "a", 0.1)
        assert leases.take(session, leases.replica("b"), "b", 60)
        for _ in range(3):
            jobs.submit(session, TRAIN)
        session.flush()
        ids = [row.id for row in (jobs.claim(session, "a"), jobs.claim(session, "b"))]
        session.commit()

    # `a` stops renewing, as a killed replica would.
    deadline = time.monotonic() + 5
    while "a" in _running(b):
        assert time.monotonic() < deadline, "a's lease never lapsed"
        time.sleep(0.02)
    with b.writer() as session:
        failed = jobs.fail_interrupted(session, leases.running(session))
        leases.forget(session)
        session.commit()

    with b.session() as session:
        states = [session.get_one(JobRow, job_id).state for job_id in ids]
        queued = session.scalars(select(JobRow.id).where(JobRow.state == "queued")).all()
        kept = set(session.scalars(select(LeaseRow.name)))
    assert (failed, states, len(queued)) == (1, ["failed", "running"], 1)
    assert kept == {leases.replica("b")}


def _running(database: Database) -> set[str]:
    with database.session() as session:
        return leases.running(session)
