"""`edgestack events` against a real hub: newest first, and following new ones."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from conftest import interruptible
from edgestack.bundle import FeatureSpec, InputSpec
from edgestack.demo import LocalFleet
from edgestack.protocol import DataSample, Event, EventBatch, SampleImport

from .test_event_stream import _enrol

pytestmark = pytest.mark.integration


def _raise(fleet: LocalFleet, auth: dict[str, str], *messages: str) -> None:
    events = [
        Event(
            event_id=uuid.uuid4(),
            at=datetime.now(UTC),
            kind="alarm_raised",
            severity="warning",
            message=message,
        )
        for message in messages
    ]
    response = httpx.post(
        f"{fleet.hub_url}/v1/devices/edge-1/events",
        content=EventBatch(batch_id=uuid.uuid4(), events=events).model_dump_json(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


def _lines_until(lines: "queue.Queue[str]", text: str, timeout_s: float = 30) -> list[str]:
    """Lines read until one holding `text`; fails if none comes in time."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not any(text in line for line in seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no line with {text!r} in time; got {seen}"
        try:
            seen.append(lines.get(timeout=remaining))
        except queue.Empty:
            continue
    return seen


def test_events_lists_newest_first_then_follows_new_ones_until_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        auth = _enrol(fleet, "edge-1")
        _raise(fleet, auth, "first alarm", "second alarm")
        listed = subprocess.run(
            [sys.executable, "-m", "edgestack", "events", "--json", "--hub", fleet.hub_url],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, "EDGESTACK_ADMIN_TOKEN": fleet.admin_token},
        )
        with subprocess.Popen(
            [sys.executable, "-m", "edgestack", "events", "--follow", "--hub", fleet.hub_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**env, "EDGESTACK_ADMIN_TOKEN": fleet.admin_token},
            preexec_fn=interruptible,
        ) as follower:
            lines: queue.Queue[str] = queue.Queue()
            reader = threading.Thread(target=lambda: [lines.put(x) for x in follower.stdout or []])
            reader.start()
            try:
                table = _lines_until(lines, "first alarm")
                _raise(fleet, auth, "third alarm")
                followed = _lines_until(lines, "third alarm")
            finally:
                follower.send_signal(signal.SIGINT)
                follower.wait(timeout=30)
                reader.join(timeout=30)

    assert listed.returncode == 0, listed.stderr
    assert [e["event"]["message"] for e in json.loads(listed.stdout)] == [
        "second alarm",
        "first alarm",
        "edge-1 enrolled",
    ]
    rows = [line for line in table if "alarm" in line]
    assert ["second alarm" in rows[0], "first alarm" in rows[1]] == [True, True]
    assert [line for line in followed if "alarm" in line] == [followed[-1]]
    assert "edge-1" in followed[-1]
    assert follower.returncode == 0


def test_the_client_reads_every_sample_a_page_at_a_time(tmp_path: Path) -> None:
    spec = InputSpec(
        sensors=["t"],
        rate_hz=10,
        window=10,
        hop=10,
        extractors=[FeatureSpec(kind="time_stats")],
        features=["mean"],
    )
    rows = [
        DataSample(at=datetime(2025, 1, 1, 0, 0, i, tzinfo=UTC), label="ok", features=[i])
        for i in range(5)
    ]
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        fleet.client.page_size = 2
        fleet.client.import_samples(
            "default",
            SampleImport(batch_id=uuid.uuid4(), device_id="bench", spec=spec, samples=rows),
        )
        everything = fleet.client.samples()

    assert [s.features for s in everything.samples] == [[float(i)] for i in range(5)]
    assert everything.specs == {spec.fingerprint(): spec}
