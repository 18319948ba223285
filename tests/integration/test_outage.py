import time
from pathlib import Path

import numpy as np
import pytest

from edgestack.agent.store import LocalStore
from edgestack.bundle import Bundle
from edgestack.client import HubClient
from edgestack.demo import LocalFleet, wait_until
from edgestack.learning import train_classifier
from edgestack.processing import FeaturePipeline, vibration_spec
from edgestack.protocol import Collection, DeployRequest, DesiredPatch, RuleParams
from edgestack.sensing import MotorSimulator

pytestmark = pytest.mark.integration

DEVICES = ["edge-1", "edge-2"]


def _batches(fleet: LocalFleet) -> dict[str, int]:
    return {d.device_id: d.telemetry.batches for d in fleet.client.devices()}


def _coin_flipper() -> bytes:
    """A model that calls a window "worn" when its first feature is above the median: on the
    motor it changes its mind about every other window, and with the rules below each change
    is an event."""
    spec = vibration_spec()
    rows = FeaturePipeline(spec).push(MotorSimulator(seed=9).read(2048 * 60))
    labels = np.where(rows[:, 0] > np.median(rows[:, 0]), "worn", "normal").tolist()
    trained = train_classifier(rows, labels, seed=9)
    return Bundle.create(
        name="flipper", version=1, labels=trained.labels, input=spec, model=trained.onnx
    ).pack()


# What the hub itself records about a device; the rest came from its agent.
HUB_KINDS = {"device_enrolled", "device_reenrolled", "reenrol_refused"}


def _all_events(client: HubClient, device: str) -> list[str]:
    """The ids of the events `device`'s agent sent, in the order the hub received them."""
    ids: list[str] = []
    after = 0
    while page := client.events(device=device, after_id=after, limit=1000):
        ids.extend(str(e.event.event_id) for e in page if e.event.kind not in HUB_KINDS)
        after = page[-1].id
    return ids


def test_hub_outage_loses_and_duplicates_no_telemetry_events_or_samples(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, DEVICES) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        wait_until(lambda: len(_batches(fleet)) == 2, timeout_s=60, what="both agents to enrol")
        fleet.client.register_model(_coin_flipper())
        fleet.client.deploy(DeployRequest(model="flipper", devices=DEVICES, force=True))
        flapping = RuleParams(min_confidence=0, trigger_windows=1, clear_windows=1)
        for device in DEVICES:
            fleet.client.update_desired(
                device,
                DesiredPatch(
                    telemetry_interval_s=0.5, rules=flapping, collect=Collection(label="normal")
                ),
            )
        wait_until(
            lambda: all(len(_all_events(fleet.client, d)) >= 3 for d in DEVICES),
            timeout_s=60,
            what="alarms to flow",
        )
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
        events = {d: _all_events(fleet.client, d) for d in DEVICES}
        samples = {d: len(fleet.client.samples(device=d).samples) for d in DEVICES}

    for device in devices:
        store = LocalStore(tmp_path / device.device_id / "agent.db")
        made = int(store.get("seq.telemetry") or 0)
        assert store.pending() == 0, f"{device.device_id} still holds unsent messages"
        assert device.telemetry.last_seq == made
        assert device.telemetry.batches == made, f"{device.device_id}: lost or duplicated batches"
        assert device.telemetry.windows > 0
        made_events = events[device.device_id]
        assert len(set(made_events)) == len(made_events), "an event arrived twice"
        assert len(made_events) == store.enqueued("events") > 3
        assert samples[device.device_id] == store.enqueued("samples") > 0
        assert store.dropped() == store.dead_lettered() == 0
        store.close()
