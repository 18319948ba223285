"""A hub on a temporary data directory, driven in-process through httpx's ASGI transport, its
database SQLite in the data directory or PostgreSQL: every test that builds one runs on both."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import make_url

from conftest import Postgres
from edgestack.client import HubClient
from edgestack.hub import HubSettings, create_app
from edgestack.hub.app import hub_of
from edgestack.hub.context import HubContext
from edgestack.hub.store import Database
from edgestack.protocol import Feeds, ReportedState

from .factories import ADMIN_TOKEN, ENROL_TOKEN, FEEDS, HARDWARE, Device, Enrol, Ready


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def migrated_template(postgres_server: Postgres) -> str:
    """The name of a PostgreSQL database at the newest schema, for tests to copy: faster than
    running every revision for each."""
    url = postgres_server.database()
    Database(url).close()
    name = make_url(url).database
    assert name is not None
    return name


DATABASES = ["sqlite", "postgresql"]


def _database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    server: Postgres = request.getfixturevalue("postgres_server")
    return server.database(template=request.getfixturevalue("migrated_template"))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest) -> str | None:
    """The hub's database: None for SQLite in its data directory, else a new PostgreSQL
    database at the newest schema (skipped, saying how to install it, where PostgreSQL is
    missing)."""
    return _database_url(request)


@pytest.fixture(scope="module", params=DATABASES)
def module_database_url(request: pytest.FixtureRequest) -> str | None:
    """As `database_url`, for a hub that a module's tests share."""
    return _database_url(request)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> HubSettings:
    return HubSettings(
        data_dir=tmp_path / "hub",
        database_url=database_url,
        admin_token=SecretStr(ADMIN_TOKEN),
        enrol_token=SecretStr(ENROL_TOKEN),
        environment="development",
    )


@pytest.fixture
def app(settings: HubSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def hub(app: FastAPI) -> HubContext:
    return hub_of(app)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub") as client,
    ):
        yield client


class _AppTransport(httpx.BaseTransport):
    """The SDK's sync calls into the app in-process, on an event loop of its own."""

    def __init__(self, app: FastAPI, portal: BlockingPortal) -> None:
        self._app = httpx.ASGITransport(app)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self._app.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return self._portal.call(send)


@pytest.fixture
def app_transport(app: FastAPI) -> Iterator[httpx.BaseTransport]:
    """Sync calls into the app, with its lifespan started; base URL http://hub."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        yield _AppTransport(app, portal)


@pytest.fixture
def sdk(app_transport: httpx.BaseTransport) -> Iterator[HubClient]:
    """The SDK as the admin, on the app."""
    with HubClient("http://hub", admin_token=ADMIN_TOKEN, transport=app_transport) as client:
        yield client


@pytest.fixture
def enrol(client: httpx.AsyncClient) -> Enrol:
    async def enrol(device_id: str) -> Device:
        body = {
            "device_id": device_id,
            "enrol_token": ENROL_TOKEN,
            "hardware": HARDWARE.model_dump(),
        }
        response = await client.post("/api/v1/enrol", json=body)
        assert response.status_code == 200, response.text
        return Device(device_id, response.json()["device_token"])

    return enrol


@pytest.fixture
async def device(enrol: Enrol) -> Device:
    return await enrol("motor-1")


@pytest.fixture
def ready(client: httpx.AsyncClient, enrol: Enrol) -> Ready:
    """Enrol a device that reports it can feed the bundles `packed_bundle` makes."""

    async def ready(device_id: str, feeds: Feeds | None = FEEDS) -> Device:
        device = await enrol(device_id)
        state = ReportedState(desired_version=0, status="idle", hardware=HARDWARE, feeds=feeds)
        response = await client.put(
            f"/api/v1/devices/{device_id}/reported",
            content=state.model_dump_json(),
            headers=device.auth,
        )
        assert response.status_code == 200, response.text
        return device

    return ready
