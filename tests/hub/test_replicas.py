"""Two hubs in one process on one PostgreSQL database and one data dir, as two replicas
would be: they share keys and artifacts, and a desired-state change made through one wakes a
long-poll held by the other, also after the other lost its listening connection."""

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from conftest import Postgres
from edgestack.hub import HubSettings, create_app
from edgestack.hub.app import hub_of
from edgestack.hub.context import HubContext
from edgestack.hub.store import Database, devices, schema
from edgestack.protocol import DesiredState

from .factories import ADMIN, ENROL_TOKEN, HARDWARE, Device, packed_bundle, wait_until

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Replica:
    hub: HubContext
    client: httpx.AsyncClient


@contextlib.asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[Replica]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub") as client,
    ):
        yield Replica(hub_of(app), client)


@pytest.fixture
def database_url(postgres_server: Postgres, migrated_template: str) -> str:
    """PostgreSQL only: replicas share a database server."""
    return postgres_server.database(template=migrated_template)


@pytest.fixture
async def replicas(settings: HubSettings) -> AsyncIterator[tuple[Replica, Replica]]:
    a, b = create_app(settings), create_app(settings)
    async with _running(a) as replica_a, _running(b) as replica_b:
        yield replica_a, replica_b


async def _enrol(replica: Replica, device_id: str) -> Device:
    body = {"device_id": device_id, "enrol_token": ENROL_TOKEN, "hardware": HARDWARE.model_dump()}
    response = await replica.client.post("/api/v1/enrol", json=body)
    assert response.status_code == 200, response.text
    return Device(device_id, response.json()["device_token"])


def _listeners(replica: Replica) -> list[int]:
    """The server processes of the replicas' connections that listen for changes."""
    listening = text("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %'")
    with replica.hub.db.engine.connect() as connection:
        return list(connection.scalars(listening))


def _last_seen(replica: Replica, device: Device) -> datetime | None:
    with replica.hub.db.session() as session:
        return devices.get(session, device.device_id).last_seen


async def _change_seen_across(a: Replica, b: Replica, device: Device) -> DesiredState:
    """Long-poll `device`'s desired state on b, change it on a; what b answers."""
    url = f"/api/v1/devices/{device.device_id}/desired"
    version = DesiredState.model_validate(
        (await b.client.get(url, headers=device.auth)).json()
    ).version
    seen_before = _last_seen(b, device)
    # A wait far longer than the bound below: only a notification can answer in time.
    polled = asyncio.create_task(
        b.client.get(url, params={"after": version, "wait": 60}, headers=device.auth)
    )
    # Read with the state in one transaction, so once it moves the poll holds the old state.
    await wait_until(lambda: _last_seen(b, device) != seen_before)
    patched = await a.client.patch(url, json={"telemetry_interval_s": 7}, headers=ADMIN)
    assert patched.status_code == 200, patched.text
    answer = await asyncio.wait_for(polled, 15)
    return DesiredState.model_validate(answer.json())


async def test_a_change_made_on_one_replica_answers_a_long_poll_on_another(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    device = await _enrol(a, "motor-1")

    seen = await _change_seen_across(a, b, device)

    assert seen.telemetry_interval_s == 7


async def test_a_replica_that_lost_its_listening_connection_hears_again(
    replicas: tuple[Replica, Replica], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = replicas
    caplog.set_level(logging.INFO, logger="edgestack.hub.notify")
    device = await _enrol(a, "motor-1")
    await wait_until(lambda: len(_listeners(b)) == 2)
    with b.hub.db.engine.connect() as connection:
        for pid in _listeners(b):
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await wait_until(lambda: "hearing other replicas' desired-state changes again" in caplog.text)

    seen = await _change_seen_across(a, b, device)

    assert seen.telemetry_interval_s == 7


async def test_changes_too_many_for_one_notification_all_reach_the_other_replica(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    # 63 characters each, the longest id: 300 of them fill more than two notifications.
    device_ids = [f"{n:03d}".ljust(63, "x") for n in range(300)]
    await wait_until(lambda: len(_listeners(b)) == 2)
    changed = [b.hub.notifier.watch(device_id) for device_id in device_ids]

    await asyncio.to_thread(a.hub.desired_changed, device_ids)

    await wait_until(lambda: all(event.is_set() for event in changed), timeout_s=15)


async def test_replicas_share_keys_and_serve_each_others_artifacts(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    rotated = await a.client.post("/api/v1/keys/rotate", headers=ADMIN)
    assert rotated.status_code == 200, rotated.text
    data = packed_bundle("motor", 1)
    raw = {**ADMIN, "Content-Type": "application/octet-stream"}
    registered = await a.client.post("/api/v1/models", content=data, headers=raw)
    assert registered.status_code == 201, registered.text

    keys_a = (await a.client.get("/api/v1/keys", headers=ADMIN)).json()
    keys_b = (await b.client.get("/api/v1/keys", headers=ADMIN)).json()
    served = await b.client.get(f"/api/v1/artifacts/{registered.json()['digest']}", headers=ADMIN)

    assert len(keys_a) == 2 and keys_b == keys_a
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == registered.json()["digest"]


def test_replicas_starting_together_on_a_new_database_all_open_it(postgres_url: str) -> None:
    starting = threading.Barrier(3)
    # A wait on a lock that never ends fails the test rather than hanging it.
    url = f"{postgres_url}?options=-c%20lock_timeout%3D30000"

    def start() -> str:
        starting.wait()
        database = Database(url)
        database.close()
        return database.schema_change.after

    with ThreadPoolExecutor(3) as pool:
        reached = list(pool.map(lambda _: start(), range(3)))

    assert reached == [schema.head()] * 3


async def test_a_token_enrolled_again_on_one_replica_is_refused_at_once_on_another(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    first = await _enrol(a, "motor-1")
    # b has answered the device before, as it would remember a token between calls.
    before = await b.client.get("/api/v1/devices/motor-1/desired", headers=first.auth)
    again = {
        "device_id": "motor-1",
        "enrol_token": ENROL_TOKEN,
        "device_token": first.token,
        "hardware": HARDWARE.model_dump(),
    }
    answer = await a.client.post("/api/v1/enrol", json=again)
    second = Device("motor-1", answer.json()["device_token"])

    old = await b.client.get("/api/v1/devices/motor-1/desired", headers=first.auth)
    new = await b.client.get("/api/v1/devices/motor-1/desired", headers=second.auth)

    assert before.status_code == 200
    assert (old.status_code, new.status_code) == (401, 200)
