"""Services the tests and benchmarks start for themselves on loopback: a Mosquitto broker
and a PostgreSQL server, each a process of its own on a free port.

    server = Postgres(postgres_bindir(), workdir)
    server.start()
    url = server.database()
"""

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "HubBroker",
    "Mosquitto",
    "Postgres",
    "find_mosquitto",
    "free_port",
    "postgres_bindir",
]

_BROKER_START_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """A Mosquitto broker process on 127.0.0.1:`port`: anonymous access and no persistence,
    or as the configuration file `config` (listening on `port`) says."""

    host = "127.0.0.1"

    def __init__(
        self, binary: str, workdir: Path, *, config: Path | None = None, port: int = 0
    ) -> None:
        self.port = port or free_port()
        self._binary = binary
        self._config = config or workdir / "mosquitto.conf"
        if config is None:
            self._config.write_text(
                f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
            )
        self._log = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the broker and return once it accepts connections."""
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [self._binary, "-c", str(self._config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + _BROKER_START_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self._log.read_text()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not accept connections in {_BROKER_START_S} s")

    def stop(self) -> None:
        """Stop the broker; clients see it go away."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


class Postgres:
    """A PostgreSQL server of its own on 127.0.0.1:`port`, trusting local connections, tuned
    for tests (no fsync): one per test session, a fresh database per test (`database`)."""

    host = "127.0.0.1"

    def __init__(self, bindir: Path, workdir: Path) -> None:
        self.port = free_port()
        self._bindir = bindir
        self._data = workdir / "data"
        self._log = workdir / "postgres.log"
        self._workdir = workdir
        self._names = itertools.count()
        # PostgreSQL refuses to run as root; Debian's package makes the `postgres` user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        if self._as:
            shutil.chown(self._workdir, "postgres")
        subprocess.run(
            [
                *self._as,
                str(self._bindir / "initdb"),
                "-D",
                str(self._data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        options = (
            f"-c listen_addresses={self.host} -p {self.port} -k {self._workdir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400"
        )
        subprocess.run(
            [
                *self._as,
                str(self._bindir / "pg_ctl"),
                "-D",
                str(self._data),
                "-l",
                str(self._log),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [
                *self._as,
                str(self._bindir / "pg_ctl"),
                "-D",
                str(self._data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            check=False,
            capture_output=True,
        )

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of `database` on this server."""
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def database(self, template: str | None = None) -> str:
        """The URL of a new database: empty, or a copy of the database named `template`
        (which nobody may be connected to), much faster than building its tables again."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        copy = f' TEMPLATE "{template}"' if template is not None else ""
        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)


def postgres_bindir() -> Path | None:
    """Where PostgreSQL's server programs are: on PATH, or Debian's versioned directory."""
    on_path = shutil.which("initdb")
    if on_path is not None and shutil.which("pg_ctl") is not None:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def find_mosquitto() -> str | None:
    """The `mosquitto` broker binary, or None where it is not installed."""
    # Debian installs the broker in /usr/sbin, which is not on every user's PATH.
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")


class HubBroker:
    """Mosquitto as `edgestack broker config` sets it up in `workdir`, not started: the hub's
    account (password `hub_password`) and the per-device accounts and ACL the hub keeps;
    `hub_env` holds the hub's settings for it, `url` its address."""

    def __init__(self, binary: str, workdir: Path, hub_password: str) -> None:
        accounts = workdir / "accounts"
        port = free_port()
        subprocess.run(
            [
                *(sys.executable, "-m", "edgestack", "broker", "config"),
                *("--accounts", str(accounts), "--port", str(port)),
            ],
            env={**os.environ, "EDGESTACK_HUB_BROKER_PASSWORD": hub_password},
            check=True,
            capture_output=True,
        )
        if os.geteuid() == 0 and _user_exists("mosquitto"):
            # The broker drops to a user of its own when started as root.
            shutil.chown(accounts, "mosquitto")
        self.mosquitto = Mosquitto(binary, workdir, config=accounts / "mosquitto.conf", port=port)
        self.url = f"mqtt://{Mosquitto.host}:{port}"
        self._pid_file = workdir / "pid"
        self.hub_env = {
            "EDGESTACK_HUB_BROKER_URL": self.url,
            "EDGESTACK_HUB_BROKER_PASSWORD": hub_password,
            "EDGESTACK_HUB_BROKER_ACCOUNTS": str(accounts),
            "EDGESTACK_HUB_BROKER_RELOAD": f"sh -c 'kill -HUP $(cat {self._pid_file})'",
        }

    def start(self) -> None:
        """Start the broker, or start it again, where the hub's reload command finds it."""
        self.mosquitto.start()
        self._pid_file.write_text(str(self.mosquitto.pid))

    def stop(self) -> None:
        self.mosquitto.stop()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
