"""Who a device is, with real processes: an impostor holding the fleet's enrolment token
cannot take over an enrolled id; a device that lost its token waits for an operator's
approval instead of exiting; an agent the hub does not speak the protocol of stops."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from edgestack.agent import Agent, AgentSettings
from edgestack.agent import link as agent_link
from edgestack.agent.link import ProtocolRefused
from edgestack.agent.store import LocalStore
from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import PROTOCOL, DesiredPatch

pytestmark = pytest.mark.integration

HARDWARE = {"cores": 1, "ram_mb": 64, "arch": "x86_64", "providers": []}


def _kinds(fleet: LocalFleet) -> list[str]:
    return [e.event.kind for e in fleet.client.events(device="edge-1")]


def _batches(fleet: LocalFleet) -> int:
    return fleet.client.device("edge-1").telemetry.batches


def test_an_impostor_is_refused_and_a_device_that_lost_its_token_waits_for_approval(
    tmp_path: Path,
) -> None:
    with LocalFleet(tmp_path, ["edge-1"]) as fleet:
        fleet.start_hub()
        fleet.start_agent("edge-1")
        wait_until(lambda: fleet.client.devices(), timeout_s=60, what="the agent to enrol")
        fleet.client.update_desired("edge-1", DesiredPatch(telemetry_interval_s=0.5))

        impostor = httpx.post(
            f"{fleet.hub_url}/v1/enrol",
            json={"device_id": "edge-1", "enrol_token": fleet.enrol_token, "hardware": HARDWARE},
        )
        sent = _batches(fleet)
        wait_until(lambda: _batches(fleet) > sent + 2, timeout_s=30, what="telemetry to go on")

        fleet.stop_agents()
        store = LocalStore(tmp_path / "edge-1" / "agent.db")
        store.set("device_token", None)  # a wiped or replaced device
        store.close()
        fleet.start_agent("edge-1")
        wait_until(
            lambda: "waiting for approval" in (tmp_path / "edge-1.log").read_text(),
            timeout_s=60,
            what="the agent to wait for approval",
        )
        waiting = fleet.client.device("edge-1").reenrolment
        approve = subprocess.run(
            [sys.executable, "-m", "edgestack", "devices", "approve", "edge-1"],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                "EDGESTACK_ADMIN_TOKEN": fleet.admin_token,
                "EDGESTACK_HUB_URL": fleet.hub_url,
            },
        )
        wait_until(
            lambda: "device_reenrolled" in _kinds(fleet), timeout_s=60, what="the re-enrolment"
        )
        sent = _batches(fleet)
        wait_until(lambda: _batches(fleet) > sent, timeout_s=30, what="telemetry again")
        alive = fleet.pids
        kinds = [k for k in _kinds(fleet) if k.startswith(("device_", "reenrol_"))]
        fleet.stop_agents()
        log = (tmp_path / "edge-1.log").read_text()

    assert impostor.status_code == 403
    assert "edgestack devices approve edge-1" in impostor.json()["detail"]
    assert waiting == "waiting"
    assert approve.returncode == 0, approve.stdout + approve.stderr
    assert len(alive) == 2
    assert log.count("waiting for approval") == 1
    assert kinds == ["device_enrolled", "reenrol_refused", "device_reenrolled"]


def test_an_agent_whose_protocol_the_hub_does_not_speak_says_so_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_link, "PROTOCOL", PROTOCOL + 1)
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        settings = AgentSettings(
            hub_url=fleet.hub_url,
            enrol_token=fleet.enrol_token,
            device_id="edge-1",
            data_dir=tmp_path / "edge-1",
            drain_timeout_s=0,
        )
        agent = Agent(settings)
        agent.store.set("device_token", "from-an-earlier-release")

        with pytest.raises(ExceptionGroup) as stopped:
            asyncio.run(asyncio.wait_for(agent.run(), timeout=60))

    assert stopped.group_contains(ProtocolRefused)
    assert agent.error is not None
    assert f"protocol {PROTOCOL + 1} is not spoken here" in agent.error
