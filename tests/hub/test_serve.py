"""The hub as a real process: it serves on its port and stops promptly on SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import free_port

from .factories import ADMIN, ADMIN_TOKEN, ENROL_TOKEN, HARDWARE

pytestmark = pytest.mark.integration


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _last_seen(client: httpx.Client) -> str:
    return str(client.get("/api/v1/devices/motor-1", headers=ADMIN).json()["last_seen"])


def _wait(condition: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert proc.poll() is None, "the hub exited"
        assert time.monotonic() < deadline, "the hub did not get there within 30 s"
        time.sleep(0.02)


def test_sigterm_answers_waiting_long_polls_and_stops(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "EDGESTACK_HUB_DATA_DIR": str(tmp_path / "hub"),
        "EDGESTACK_HUB_PORT": str(port),
        "EDGESTACK_ENROL_TOKEN": ENROL_TOKEN,
        "EDGESTACK_ADMIN_TOKEN": ADMIN_TOKEN,
        "EDGESTACK_HUB_ENVIRONMENT": "development",
    }
    code = "from edgestack.hub import HubSettings, serve; serve(HubSettings())"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            _wait(lambda: _healthy(client), proc)
            body = {
                "device_id": "motor-1",
                "enrol_token": ENROL_TOKEN,
                "hardware": HARDWARE.model_dump(),
            }
            token = client.post("/api/v1/enrol", json=body).json()["device_token"]
            enrolled_seen = _last_seen(client)
            with ThreadPoolExecutor(1) as pool:
                poll = pool.submit(
                    client.get,
                    "/api/v1/devices/motor-1/desired",
                    params={"after": 0, "wait": 60},
                    headers={"Authorization": f"Bearer {token}"},
                )
                # The long-poll marks the device seen once it is watching for changes.
                _wait(lambda: _last_seen(client) != enrolled_seen, proc)
                started = time.monotonic()

                proc.send_signal(signal.SIGTERM)
                answer = poll.result(timeout=15)
                _, stderr = proc.communicate(timeout=15)

        assert answer.status_code == 200
        assert answer.json()["version"] == 0
        assert time.monotonic() - started < 10
        assert proc.returncode in (0, -signal.SIGTERM)
        assert b"Traceback" not in stderr, stderr.decode()
        assert (tmp_path / "hub" / "hub.db").is_file()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
