"""Retention's SQL and its schema revision on PostgreSQL: the same functions the hub runs on
SQLite, on a database of the tables as declared (the earlier revisions are PostgreSQL's part
of the parity work, not retention's)."""

import importlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, func, inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from edgestack.hub.store import Base, devices, events, retention, telemetry, utcnow
from edgestack.hub.store.tables import (
    EventRow,
    ReceivedBatchRow,
    TelemetryRollupRow,
    TelemetryRow,
)
from edgestack.protocol import EnrolRequest

from .factories import HARDWARE, event_batch, telemetry_batch

REVISION = "edgestack.hub.store.migrations.versions.0019_telemetry_rollups"


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


def test_the_rollup_revision_goes_up_and_down_on_postgresql(engine: Engine) -> None:
    revision = importlib.import_module(REVISION)
    with engine.begin() as connection:
        Base.metadata.tables["devices"].create(connection)
        with Operations.context(MigrationContext.configure(connection)):
            revision.upgrade()
        made = set(inspect(connection).get_table_names())
        with Operations.context(MigrationContext.configure(connection)):
            revision.downgrade()
        left = set(inspect(connection).get_table_names())

    assert {"telemetry_rollups", "retention_totals"} <= made
    assert left == {"devices"}


def test_retention_rolls_up_and_removes_in_bounded_steps_on_postgresql(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session:
        request = EnrolRequest(device_id="motor-1", enrol_token="t", hardware=HARDWARE)
        devices.enrol(session, request)
        sent = [telemetry_batch(seq) for seq in (1, 2, 3, 4)]
        for batch in sent:
            telemetry.ingest(session, "motor-1", batch)
        events.ingest(session, "motor-1", event_batch(4))
        old = utcnow() - timedelta(days=40)
        session.execute(update(TelemetryRow).values(received_at=old))
        session.execute(update(EventRow).values(received_at=old))
        session.commit()
    before = utcnow() - timedelta(days=7)

    def step(function: retention.Step) -> int:
        with sessions() as session:
            done = function(session, before, 2)
            session.commit()
        return done

    rolled = [step(retention.roll_up) for _ in range(3)]
    removed = [step(retention.remove_events) for _ in range(3)]
    with sessions() as session:
        rollup = session.scalars(select(TelemetryRollupRow)).one()
        ids = session.scalar(select(func.count()).select_from(ReceivedBatchRow))
        resent = telemetry.ingest(session, "motor-1", sent[0])

    assert rolled == [2, 1, 0] and removed == [2, 1, 0]
    assert (rollup.batches, rollup.windows, rollup.predictions) == (
        3,
        30,
        {"normal": 27, "worn": 3},
    )
    assert ids == 1 + 3  # the event batch's id, and each telemetry batch's but the newest
    assert resent.duplicate


def test_nothing_is_removed_that_is_younger_than_its_age_on_postgresql(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        request = EnrolRequest(device_id="motor-1", enrol_token="t", hardware=HARDWARE)
        devices.enrol(session, request)
        telemetry.ingest(session, "motor-1", telemetry_batch(1))
        session.commit()
        done = retention.roll_up(session, utcnow() - timedelta(days=7), 100)

        assert done == 0 and session.scalar(select(func.count()).select_from(TelemetryRow)) == 1
