"""Telemetry stored many batches to a transaction: each answered once committed, one that
fails failing alone."""

import asyncio

import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.errors import NotFound
from edgestack.hub.store import devices as stored
from edgestack.hub.store.tables import TelemetryRow
from edgestack.protocol import TelemetryTotals

from .factories import Enrol, count, telemetry_batch

pytestmark = pytest.mark.anyio


async def test_batches_sent_at_once_are_each_stored_and_acked(
    hub: HubContext, enrol: Enrol
) -> None:
    devices = [await enrol(f"motor-{n}") for n in range(4)]
    batches = {d.device_id: [telemetry_batch(seq) for seq in range(1, 11)] for d in devices}
    resent = batches["motor-0"][0]

    acks = await asyncio.gather(
        *(hub.telemetry.ingest(d, b) for d, sent in batches.items() for b in sent),
        hub.telemetry.ingest("motor-0", resent),
    )

    assert sum(a.accepted for a in acks) == 40
    assert [a.duplicate for a in acks].count(True) == 1
    assert count(hub, TelemetryRow) == 40
    with hub.db.session() as session:
        totals = TelemetryTotals.model_validate(stored.get(session, "motor-3").telemetry)
    assert (totals.batches, totals.last_seq) == (10, 10)


async def test_a_batch_that_fails_fails_alone(hub: HubContext, enrol: Enrol) -> None:
    await enrol("motor-1")

    results = await asyncio.gather(
        *(hub.telemetry.ingest("motor-1", telemetry_batch(seq)) for seq in range(1, 6)),
        hub.telemetry.ingest("motor-9", telemetry_batch(1)),
        return_exceptions=True,
    )

    assert isinstance(results[-1], NotFound)
    assert all(not isinstance(r, BaseException) and r.accepted for r in results[:-1])
    assert count(hub, TelemetryRow) == 5
