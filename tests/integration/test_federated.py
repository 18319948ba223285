"""Federated learning with real processes: a hub and three agents on simulated motors, each
keeping windows of its own faults on the device, and the clients the agents supervise
training for one SuperLink; a device killed mid-round does not stall the run."""

import contextlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from edgestack.client import HubClient
from edgestack.demo import LocalFleet, wait_until
from edgestack.federated import FederatedConfig, Federation, Tap
from edgestack.processing import vibration_spec
from edgestack.protocol import Collection, DesiredPatch, FaultInjection, FederatedTask

pytestmark = pytest.mark.integration

# Each device sees two of the three conditions, in the order it keeps them: non-IID.
DEVICES = {
    "device-a": ("normal", "imbalance"),
    "device-b": ("normal", "bearing_wear"),
    "device-c": ("imbalance", "bearing_wear"),
}
DATASET = "fl"
ROWS_PER_LABEL = 8
# Generous: each message starts an app process that imports torch, on a busy machine. Only the
# round the device dies in waits it out.
ROUND_TIMEOUT = 45.0


def _keep(label: str, aggregator: str | None = None) -> DesiredPatch:
    return DesiredPatch(
        fault=FaultInjection(kind=label),
        federated=FederatedTask(
            keep=Collection(label=label, dataset=DATASET), aggregator=aggregator, dataset=DATASET
        ),
    )


def _kept(client: HubClient, device: str) -> int:
    reported = client.device(device).reported
    return reported.federated.kept if reported and reported.federated else 0


def _client_log(root: Path, device: str) -> str:
    log = root / device / "federated" / "client" / "logs" / "supernode.log"
    return log.read_text(errors="replace") if log.exists() else ""


def test_three_agents_train_on_windows_they_keep_and_one_killed_mid_round_stalls_nothing(
    tmp_path: Path,
) -> None:
    # Classes and width left to the run: the union of the devices' label names, their rows'.
    config = FederatedConfig(
        rounds=2,
        min_clients=3,
        round_timeout=ROUND_TIMEOUT,
        local_epochs=2,
        scale=False,  # no query round: straight to training
    )
    with LocalFleet(tmp_path, list(DEVICES)) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        client = fleet.client
        wait_until(lambda: len(client.devices()) == 3, timeout_s=60, what="three to enrol")
        for device, (first, _) in DEVICES.items():
            client.update_desired(device, _keep(first))
        for device in DEVICES:
            wait_until(
                lambda d=device: _kept(client, d) >= ROWS_PER_LABEL,  # type: ignore[misc]
                timeout_s=60,
                what=f"{device} to keep its first condition's windows",
            )
        federation = Federation(tmp_path / "federation", config)
        # Every byte between the devices and the aggregator passes the tap. Told before the
        # SuperLink listens: their clients wait for it, nothing crashes.
        tap = Tap(federation.address)
        for device, (_, second) in DEVICES.items():
            client.update_desired(device, _keep(second, tap.address))
        with tap, federation:
            for device in DEVICES:
                wait_until(
                    lambda d=device: _kept(client, d) >= 2 * ROWS_PER_LABEL,  # type: ignore[misc]
                    timeout_s=60,
                    what=f"{device} to keep its second condition's windows",
                )
            federation.submit()
            doomed = "device-c"
            wait_until(
                lambda: _client_log(tmp_path, doomed).count("Receiving: train message") == 2,
                timeout_s=180,
                what="the doomed device's client to get round 2",
            )
            supernode = int((tmp_path / doomed / "federated" / "client" / "client.pid").read_text())
            # The device dies, power cut: its agent and the client it supervised.
            fleet.kill_agent(doomed)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(supernode, signal.SIGKILL)
            result = federation.wait()
            reported = {d: client.device(d).reported for d in DEVICES}
        datasets = client.datasets()
    kept = np.concatenate(
        [np.load(f)["x"] for f in tmp_path.glob("device-*/federated/*.windows.npz")]
    )

    assert [r.round for r in result.history] == [1, 2]
    assert result.labels == ["bearing_wear", "imbalance", "normal"]
    assert result.spec == vibration_spec()
    assert [r.participants for r in result.history] == [3, 2]
    assert all(np.isfinite(a).all() for a in result.state.values())
    for device in ("device-a", "device-b"):
        state = reported[device]
        assert state is not None and state.federated is not None
        assert state.federated.aggregator == tap.address
        assert state.federated.client_starts >= 1
    # The kept windows never left the devices: the hub holds no sample of any dataset, and
    # no kept row's bytes are in anything the devices sent the aggregator (weights cross as
    # their raw bytes, so a row sent up would show as its own).
    assert datasets == []
    assert len(kept) >= 3 * 2 * ROWS_PER_LABEL and len(tap.uplink) > 0
    assert not any(row.tobytes() in tap.uplink for row in kept)
