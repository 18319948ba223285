"""`edgestack fleet simulate` against a real hub: every batch acked is stored, a deployment
reaches every simulated device, and a second run enrols nobody again."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bundles import random_bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.fleetsim import SimSummary
from edgestack.protocol import DeployRequest, DeviceView

from .test_cli import bare_env

pytestmark = pytest.mark.integration

_DEVICES = 50


def _simulate(fleet: LocalFleet, state: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgestack",
            "fleet",
            "simulate",
            "--devices",
            str(_DEVICES),
            "--interval",
            "0.5",
            "--state-file",
            str(state),
            "--json",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=bare_env(EDGESTACK_HUB_URL=fleet.hub_url, EDGESTACK_ENROL_TOKEN=fleet.enrol_token),
    )


def _summary(run: subprocess.Popen[str]) -> SimSummary:
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    return SimSummary.model_validate_json(out)


def _simulated(fleet: LocalFleet) -> list[DeviceView]:
    return [d for d in fleet.client.devices() if d.device_id.startswith("sim-")]


def test_a_simulated_fleet_is_stored_whole_and_follows_its_twin(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub(env={"EDGESTACK_HUB_ENROL_ATTEMPTS": str(2 * _DEVICES)})
        model = fleet.client.register_model(random_bundle(5, name="motor").pack())
        run = _simulate(fleet, state)
        wait_until(
            lambda: len([d for d in _simulated(fleet) if d.reported]) == _DEVICES,
            timeout_s=60,
            what="every simulated device to report",
        )

        fleet.client.deploy(DeployRequest(model="motor", all=True, force=True))
        wait_until(
            lambda: all(
                d.reported and d.reported.bundle and d.reported.bundle.digest == model.digest
                for d in _simulated(fleet)
            ),
            timeout_s=60,
            what="every simulated device to report the deployed bundle",
        )
        wait_until(
            lambda: all(d.telemetry.batches >= 2 for d in _simulated(fleet)),
            timeout_s=60,
            what="two batches of every simulated device",
        )
        run.send_signal(signal.SIGINT)
        first = _summary(run)
        stored = sum(d.telemetry.batches for d in _simulated(fleet))
        again = _summary(_simulate(fleet, state, "--duration", "1"))

    assert first.devices_up == first.enrolled == _DEVICES
    assert first.reports_acked == stored
    assert first.reports_failed == 0 and first.errors == {}
    assert first.desired_changes == first.bundles_downloaded == _DEVICES
    assert len(first.desired_seen_at) == _DEVICES
    assert first.ingest_p50_ms is not None and first.ingest_p99_ms is not None
    assert again.enrolled == 0 and again.errors == {}
    assert json.loads(state.read_text())["hub"] == fleet.hub_url
