"""Rollouts with a real hub and real agents: a candidate that disagrees with the running model
fails its agreement gate and goes back on every device of its wave; a good one completes,
wave by wave, across a hub killed in the middle."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from edgestack.bundle import Bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.learning import train_classifier
from edgestack.processing import vibration_spec
from edgestack.protocol import BundleRef, DesiredPatch, RolloutView

from .test_cli import cli

pytestmark = pytest.mark.integration

DEVICES = ["edge-1", "edge-2", "edge-3"]


def _bundles() -> tuple[Bundle, Bundle, Bundle]:
    """The running model; one that learnt the same boundary with its labels swapped, so it
    disagrees on nearly every window; and the running model's very classifier again, with its
    metrics this time: the same bundle again would be the version it already is."""
    spec = vibration_spec()
    rows = np.random.default_rng(0).normal(size=(200, len(spec.features))).astype(np.float32)
    labels = np.where(rows[:, 0] > 0, "imbalance", "normal")
    swapped = np.where(labels == "normal", "imbalance", "normal")
    running = train_classifier(rows, labels.tolist(), seed=1)
    opposed = train_classifier(rows, swapped.tolist(), seed=1)

    def bundle(
        trained_onnx: bytes,
        trained_labels: list[str],
        version: int,
        metrics: dict[str, float] | None = None,
    ) -> Bundle:
        return Bundle.create(
            name="motor",
            version=version,
            labels=trained_labels,
            input=spec,
            model=trained_onnx,
            metrics=metrics,
        )

    return (
        bundle(running.onnx, running.labels, 1),
        bundle(opposed.onnx, opposed.labels, 2),
        bundle(running.onnx, running.labels, 3, running.metrics),
    )


def _rollout(fleet: LocalFleet, rollout_id: int) -> RolloutView:
    return fleet.client.rollout(rollout_id)


def _running(fleet: LocalFleet, version: int, devices: list[str]) -> bool:
    reported = {d.device_id: d.reported for d in fleet.client.devices()}
    return all(
        (r := reported.get(d)) is not None
        and r.bundle is not None
        and r.bundle.version == version
        and r.shadow is None
        for d in devices
    )


def test_a_disagreeing_candidate_goes_back_and_a_good_one_completes_across_a_hub_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESTACK_HUB_JOBS_WORKER", "false")
    monkeypatch.setenv("EDGESTACK_HUB_CONTROL_TICK_S", "0.5")
    running, opposed, good = _bundles()
    gate = ["--gate", "agreement>=0.9", "--min-windows", "8", "--shadow", "3s"]
    with LocalFleet(tmp_path, DEVICES) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        wait_until(
            lambda: (
                all(d.reported and d.reported.feeds for d in fleet.client.devices())
                and len(fleet.client.devices()) == 3
            ),
            timeout_s=60,
            what="the agents to report",
        )
        for device_id in DEVICES:
            fleet.client.update_desired(device_id, DesiredPatch(telemetry_interval_s=1))
        fleet.client.register_model(running.pack())
        assert cli(fleet, "deploy", "motor", "--all").returncode == 0
        wait_until(lambda: _running(fleet, 1, DEVICES), timeout_s=60, what="motor v1 to run")
        fleet.client.register_model(opposed.pack())

        bad = cli(fleet, "rollout", "start", "motor@2", "--all", "--waves", "60%,100%", *gate)
        wait_until(
            lambda: _rollout(fleet, 1).state == "rolled_back",
            timeout_s=60,
            what="the disagreeing candidate to be rolled back",
        )
        wait_until(lambda: _running(fleet, 1, DEVICES), timeout_s=30, what="v1 back everywhere")
        shown = cli(fleet, "rollout", "show", "1")
        rolled_back = _rollout(fleet, 1)
        desired = {d.device_id: d.desired for d in fleet.client.devices()}

        fleet.client.register_model(good.pack())
        started = cli(fleet, "rollout", "start", "motor@3", "--all", "--waves", "60%,100%", *gate)
        wait_until(
            lambda: _rollout(fleet, 2).wave == 1,
            timeout_s=60,
            what="the good candidate's first wave to be promoted",
        )
        (hub_pid, *_) = fleet.pids
        os.kill(hub_pid, signal.SIGKILL)
        fleet.stop_hub()
        fleet.start_hub()
        wait_until(
            lambda: _rollout(fleet, 2).state == "completed",
            timeout_s=60,
            what="the good candidate to complete after the hub came back",
        )
        wait_until(lambda: _running(fleet, 3, DEVICES), timeout_s=30, what="v3 everywhere")
        events = fleet.client.events(limit=1000)

    assert bad.returncode == 0, bad.stdout
    assert [w.devices for w in rolled_back.waves] == [["edge-1", "edge-2"], ["edge-3"]]
    assert [w.state for w in rolled_back.waves] == ["rolled_back", "waiting"]
    first = rolled_back.waves[0]
    assert first.readings is not None and first.readings.agreement is not None
    assert first.readings.agreement < 0.9
    assert first.verdict is not None and first.verdict.startswith("gate failed: agreement")
    v1 = BundleRef.model_validate(rolled_back.previous["edge-1"])
    for device_id in DEVICES:
        assert desired[device_id].bundle == v1
        assert desired[device_id].shadow is None
    assert "rolled_back" in shown.stdout and "FAIL" in shown.stdout
    assert started.returncode == 0, started.stdout
    messages = [e.event.message for e in events if e.event.kind.startswith("rollout")]
    # The second rollout started each wave once: the restarted hub went on from wave 2.
    second = [m for m in messages if m.startswith("rollout 2 ")]
    assert [m for m in second if "in shadow on" in m] == [
        "rollout 2 (motor v3): wave 1 of 2 in shadow on edge-1, edge-2",
        "rollout 2 (motor v3): wave 2 of 2 in shadow on edge-3",
    ]
    assert any("every wave promoted" in m for m in second)
    assert not any("in shadow on edge-3" in m for m in messages if m.startswith("rollout 1 "))
