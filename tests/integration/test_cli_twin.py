"""A device's twin changed from the command line, and the real agent following it."""

from pathlib import Path

import pytest

from bundles import random_bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import DeployRequest, ReportedState

from .test_cli import cli

pytestmark = pytest.mark.integration


def _reported(fleet: LocalFleet) -> ReportedState | None:
    """What edge-1 last reported; None before it enrolled and reported."""
    return next((d.reported for d in fleet.client.devices() if d.device_id == "edge-1"), None)


def test_rules_faults_and_undeploy_set_from_the_cli_reach_the_agent(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, ["edge-1"]) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        fleet.client.register_model(random_bundle(3, name="motor").pack())
        wait_until(
            lambda: (r := _reported(fleet)) and r.feeds,
            timeout_s=60,
            what="the agent to report what it feeds",
        )
        fleet.client.deploy(DeployRequest(model="motor", devices=["edge-1"]))
        wait_until(
            lambda: (r := _reported(fleet)) and r.bundle,
            timeout_s=60,
            what="the agent to run the model",
        )

        ruled = cli(
            fleet, "devices", "set", "edge-1", "--rule", "min_confidence=0.9",
            "--rule", "trigger_windows=2", "--telemetry-interval", "2",
        )  # fmt: skip
        applied = wait_until(
            lambda: (
                (r := fleet.client.device("edge-1").reported)
                and r.rules
                and r.rules.min_confidence == 0.9
                and r
            ),
            timeout_s=30,
            what="the agent to report the new rules",
        )
        bad_rule = cli(fleet, "devices", "set", "edge-1", "--rule", "min_confidence=2")
        injected = cli(fleet, "devices", "inject", "edge-1", "imbalance", "--noise", "2")
        desired = fleet.client.device("edge-1").desired
        undeployed = cli(fleet, "undeploy", "--device", "edge-1")
        idle = wait_until(
            lambda: (r := _reported(fleet)) and r.bundle is None and r,
            timeout_s=30,
            what="the agent to run no model",
        )
        cleared = cli(fleet, "devices", "inject", "edge-1", "normal")
        after = fleet.client.device("edge-1").desired
        stopped = cli(fleet, "devices", "stop", "edge-1")
        halted = wait_until(
            lambda: (r := _reported(fleet)) and r.status == "stopped" and r,
            timeout_s=30,
            what="the agent to report its app stopped",
        )
        started = cli(fleet, "devices", "start", "edge-1")
        resumed = wait_until(
            lambda: (r := _reported(fleet)) and r.status == "idle" and r,
            timeout_s=30,
            what="the agent to report its app going again",
        )

    assert ruled.returncode == 0, ruled.stdout
    assert "trigger_windows=2" in ruled.stdout and "telemetry_interval_s 2.0" in ruled.stdout
    assert applied.rules is not None and applied.rules.trigger_windows == 2
    assert applied.error is None
    assert bad_rule.returncode == 2 and "--rule min_confidence=2" in bad_rule.stdout
    assert injected.returncode == 0 and desired.fault is not None
    assert (desired.fault.kind, desired.fault.noise) == ("imbalance", 2.0)
    assert undeployed.returncode == 0 and "no model desired on edge-1" in undeployed.stdout
    assert idle.status in ("idle", "running") and idle.bundle is None
    assert cleared.returncode == 0 and after.fault is None
    assert stopped.returncode == 0 and "app stopped" in stopped.stdout
    assert halted.desired_version > idle.desired_version
    assert started.returncode == 0 and resumed.desired_version > halted.desired_version
