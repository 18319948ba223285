"""Fixtures shared across test packages: a real MQTT broker and a real PostgreSQL server on
loopback (`edgestack.demo.services`, which benchmarks start too)."""

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests import `Mosquitto`, `Postgres` and `free_port` from here, as before they moved.
from edgestack.demo.services import Mosquitto as Mosquitto
from edgestack.demo.services import Postgres as Postgres
from edgestack.demo.services import find_mosquitto, postgres_bindir
from edgestack.demo.services import free_port as free_port


def interruptible() -> None:
    """For `Popen(preexec_fn=...)`: the child takes Ctrl-C as it does in a terminal, also
    when this suite runs as a background job, whose children inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def mosquitto_binary() -> str:
    """The `mosquitto` broker binary; skips the test when it is missing."""
    binary = find_mosquitto()
    if binary is None:
        pytest.skip(
            "needs the `mosquitto` broker binary, found neither on PATH nor in /usr/sbin; "
            "install it with `apt-get install -y mosquitto`"
        )
    return binary


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running Mosquitto broker on a free loopback port, to stop and start again; skips when
    the `mosquitto` binary is missing."""
    broker = Mosquitto(mosquitto_binary(), tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto(mosquitto_broker: Mosquitto) -> tuple[str, int]:
    """`(host, port)` of a running Mosquitto broker on loopback."""
    return mosquitto_broker.host, mosquitto_broker.port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A running PostgreSQL server for the whole test session; skips when PostgreSQL or the
    psycopg driver is missing."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "needs a PostgreSQL server (initdb, pg_ctl); install it with "
            "`apt-get install -y postgresql`"
        )
    pytest.importorskip("psycopg", reason="needs psycopg; install it with `make .venv/.installed`")
    # Not under pytest's temporary directory, which only its owner may enter: the server may
    # run as another user.
    workdir = Path(tempfile.mkdtemp(prefix="edgestack-postgres-"))
    server = Postgres(bindir, workdir)
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}")
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> str:
    """The SQLAlchemy URL of a new, empty PostgreSQL database on the session's server."""
    return postgres_server.database()
