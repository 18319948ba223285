"""Mutated device and import bodies: the hub answers each with a clear 4xx, never a 500,
and stores only what validates."""

import gzip
import random
import uuid
from collections.abc import Callable

import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import EventRow, SampleRow, TelemetryRow
from edgestack.protocol import SampleImport

from .factories import (
    ADMIN,
    SPEC,
    Device,
    collecting,
    count,
    event_batch,
    sample_batch,
    telemetry_batch,
)

pytestmark = pytest.mark.anyio

CASES = 150


def _mutate(valid: bytes, rng: random.Random) -> bytes:
    data = bytearray(valid)
    match rng.randrange(5):
        case 0:
            del data[rng.randrange(len(data)) :]
        case 1:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        case 2:
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        case 3:
            data = bytearray(gzip.compress(bytes(data))[: rng.randint(0, 40)])
        case _:
            data = bytearray(rng.randbytes(rng.randint(0, 200)))
    return bytes(data)


def _sample_import() -> str:
    samples = sample_batch(2, 2).samples
    return SampleImport(batch_id=uuid.uuid4(), spec=SPEC, samples=samples).model_dump_json()


@pytest.mark.parametrize(
    ("path", "valid", "table", "rows_per_batch"),
    [
        (
            "/api/v1/devices/motor-1/telemetry",
            lambda: telemetry_batch(1).model_dump_json(),
            TelemetryRow,
            1,
        ),
        ("/api/v1/devices/motor-1/events", lambda: event_batch(2).model_dump_json(), EventRow, 2),
        (
            "/api/v1/devices/motor-1/samples",
            lambda: sample_batch(2, 2).model_dump_json(),
            SampleRow,
            2,
        ),
        ("/api/v1/datasets/bench/samples", _sample_import, SampleRow, 2),
    ],
)
async def test_mutated_bodies_get_a_reason_and_never_a_crash(
    client: httpx.AsyncClient,
    hub: HubContext,
    device: Device,
    path: str,
    valid: Callable[[], str],
    table: type,
    rows_per_batch: int,
) -> None:
    rng = random.Random(path)
    auth = ADMIN if path.startswith("/api/v1/datasets") else device.auth
    accepted = 0
    before = count(hub, table)  # the hub's own event of the enrolment
    await collecting(client, device.device_id)

    for _ in range(CASES):
        body = _mutate(valid().encode(), rng)
        response = await client.post(path, content=body, headers=auth)
        if response.status_code == 200:
            accepted += 1
            continue
        assert response.status_code in (400, 413, 415, 422), response.text
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail

    assert count(hub, table) - before <= accepted * rows_per_batch
