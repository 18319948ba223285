import time
from pathlib import Path

import pytest

from edgestack.agent.store import LocalStore
from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import DesiredPatch

pytestmark = pytest.mark.integration

DEVICES = ["edge-1", "edge-2"]


def _batches(fleet: LocalFleet) -> dict[str, int]:
    return {d.device_id: d.telemetry.batches for d in fleet.client.devices()}


def test_hub_outage_loses_and_duplicates_no_telemetry(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, DEVICES) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        wait_until(lambda: len(_batches(fleet)) == 2, timeout_s=60, what="both agents to enrol")
        for device in DEVICES:
            fleet.client.update_desired(device, DesiredPatch(telemetry_interval_s=0.5))
        wait_until(
            lambda: min(_batches(fleet).values()) >= 3, timeout_s=30, what="telemetry to flow"
        )

        fleet.stop_hub()
        time.sleep(10)  # the outage under test
        fleet.start_hub()
        before = _batches(fleet)
        # Ten seconds at two batches a second were buffered; they must all arrive.
        wait_until(
            lambda: all(n >= before[d] + 20 for d, n in _batches(fleet).items()),
            timeout_s=60,
            what="the buffered batches to arrive",
        )
        fleet.stop_agents()
        devices = fleet.client.devices()

    for device in devices:
        store = LocalStore(tmp_path / device.device_id / "agent.db")
        made = int(store.get("seq.telemetry") or 0)
        assert store.pending() == 0, f"{device.device_id} still holds unsent messages"
        assert device.telemetry.last_seq == made
        assert device.telemetry.batches == made, f"{device.device_id}: lost or duplicated batches"
        assert device.telemetry.windows > 0
        store.close()
