import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgestack.demo import LocalFleet, wait_until

pytestmark = pytest.mark.integration


def bare_env(**given: str) -> dict[str, str]:
    """`given` and where Python finds edgestack, nothing else of the caller's environment."""
    kept = {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}
    return {"PATH": "", "COLUMNS": "200", **kept, **given}


def cli(fleet: LocalFleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgestack", *args, "--hub", fleet.hub_url],
        capture_output=True,
        text=True,
        timeout=60,
        env=bare_env(EDGESTACK_ADMIN_TOKEN=fleet.admin_token),
    )


def test_listings_show_the_fleet_as_tables_and_json(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, ["edge-1"]) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        wait_until(
            lambda: [d for d in fleet.client.devices() if d.reported],
            timeout_s=60,
            what="the agent to report",
        )

        as_json = cli(fleet, "devices", "--json")
        table = cli(fleet, "devices")
        idle = cli(fleet, "devices", "list", "--status", "idle", "--json")
        running = cli(fleet, "devices", "list", "--status", "running", "--json")
        models = cli(fleet, "models", "--json")
        events = cli(fleet, "events", "--json")
        refused = subprocess.run(
            [sys.executable, "-m", "edgestack", "devices", "--hub", fleet.hub_url],
            capture_output=True,
            text=True,
            timeout=60,
            env=bare_env(EDGESTACK_ADMIN_TOKEN="wrong"),
        )

    assert as_json.returncode == 0, as_json.stderr
    devices = json.loads(as_json.stdout)
    assert [d["device_id"] for d in devices] == ["edge-1"]
    assert devices[0]["reported"]["status"] == "idle"
    assert "edge-1" in table.stdout and "idle" in table.stdout
    assert [d["device_id"] for d in json.loads(idle.stdout)] == ["edge-1"]
    assert json.loads(running.stdout) == []
    assert json.loads(models.stdout) == []
    assert [e["event"]["kind"] for e in json.loads(events.stdout)] == ["device_enrolled"]
    assert refused.returncode == 1
    assert "401" in refused.stdout


def test_an_agent_with_a_wrong_enrolment_token_stops_with_the_reason(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()

        agent = subprocess.run(
            [
                sys.executable,
                "-m",
                "edgestack",
                "agent",
                "--hub",
                fleet.hub_url,
                "--token",
                "wrong",
                "--device-id",
                "intruder",
                "--data-dir",
                str(tmp_path / "intruder"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        devices = fleet.client.devices()

    assert agent.returncode == 2
    assert "enrol_token is not this hub's enrolment token" in agent.stderr
    assert devices == []
