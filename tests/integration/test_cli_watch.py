"""`edgestack watch` against a real hub: the devices, and events as they arrive."""

import threading
from pathlib import Path

import pytest

from edgestack.demo import LocalFleet

from .test_cli import cli
from .test_event_stream import _enrol, _send

pytestmark = pytest.mark.integration


def test_watch_shows_the_devices_and_the_events_that_arrive_while_it_runs(
    tmp_path: Path,
) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        auth = _enrol(fleet)
        _send(fleet, auth, 1)
        later = threading.Timer(1.5, _enrol, (fleet, "edge-2"))  # while it watches
        later.start()
        watched = cli(fleet, "watch", "--seconds", "4", "--every", "0.5")
        later.join()

    assert watched.returncode == 0, watched.stdout + watched.stderr
    shown = watched.stdout
    assert "edge-1" in shown and "alarm_raised" in shown and "device_enrolled" in shown
    assert "edge-2" in shown  # enrolled while it watched: redrawn, not read once
