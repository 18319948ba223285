"""Fixtures shared across test packages: a real MQTT broker on loopback."""

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_BROKER_START_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def interruptible() -> None:
    """For `Popen(preexec_fn=...)`: the child takes Ctrl-C as it does in a terminal, also
    when this suite runs as a background job, whose children inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Mosquitto:
    """A Mosquitto broker process on 127.0.0.1:`port`, anonymous access, no persistence."""

    host = "127.0.0.1"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self._binary = binary
        self._config = workdir / "mosquitto.conf"
        self._config.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
        )
        self._log = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the broker and return once it accepts connections."""
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [self._binary, "-c", str(self._config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + _BROKER_START_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"mosquitto exited at start:\n{self._log.read_text()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        pytest.fail(f"mosquitto did not accept connections in {_BROKER_START_S} s")

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


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running Mosquitto broker on a free loopback port, to stop and start again; skips when
    the `mosquitto` binary is missing."""
    # Debian installs the broker in /usr/sbin, which is not on every user's PATH.
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if binary is None:
        pytest.skip(
            "needs the `mosquitto` broker binary, found neither on PATH nor in /usr/sbin; "
            "install it with `apt-get install -y mosquitto`"
        )
    broker = Mosquitto(binary, tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto(mosquitto_broker: Mosquitto) -> tuple[str, int]:
    """`(host, port)` of a running Mosquitto broker on loopback."""
    return mosquitto_broker.host, mosquitto_broker.port
