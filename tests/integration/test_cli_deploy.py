"""`edgestack deploy`, `profiles` and `devices` against a real hub process and agents."""

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bundles import random_bundle
from edgestack.bundle import Bundle, Footprint
from edgestack.demo import LocalFleet, wait_until
from edgestack.processing import EXTRACTORS, vibration_spec
from edgestack.protocol import EnrolRequest, EnrolResponse, Feeds, Hardware, ReportedState

from .test_cli import cli

pytestmark = pytest.mark.integration

PI = Hardware(cores=4, ram_mb=2048, arch="aarch64", providers=["CPUExecutionProvider"])
TOO_BIG_FOR_A_PI = Footprint(
    model_bytes=100 * 1024 * 1024, peak_ram_bytes=1024, latency_ms_p50=0.1, latency_ms_p99=0.1
)
IMU_APP = """
name: fall-watch
sources:
  - kind: imu
    params: {seed: 1}
window: 100
hop: 100
extractors:
  - {kind: time_stats}
"""


def _enrol_a_pi(fleet: LocalFleet, device_id: str, feeds: Feeds) -> None:
    """A device without an agent: enrolled with a pi's hardware, reporting `feeds`."""
    enrol = EnrolRequest(device_id=device_id, enrol_token=fleet.enrol_token, hardware=PI)
    answer = httpx.post(f"{fleet.hub_url}/v1/enrol", content=enrol.model_dump_json())
    token = EnrolResponse.model_validate_json(answer.raise_for_status().content).device_token
    state = ReportedState(desired_version=0, status="idle", hardware=PI, feeds=feeds)
    httpx.put(
        f"{fleet.hub_url}/v1/devices/{device_id}/reported",
        content=state.model_dump_json(),
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()


def test_deploy_names_its_targets_and_the_device_a_model_does_not_fit_and_force_overrides(
    tmp_path: Path,
) -> None:
    spec = vibration_spec(rate_hz=1000.0, window=250, hop=250)
    bundle = Bundle.create(
        name="motor",
        labels=["normal", "worn"],
        input=spec,
        model=b"onnx-model",
        footprint=TOO_BIG_FOR_A_PI,
    )
    feeds = Feeds(sensors=spec.sensors, rate_hz=spec.rate_hz, extractors=EXTRACTORS.names())
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        _enrol_a_pi(fleet, "edge-1", feeds)
        fleet.client.register_model(bundle.pack())

        profiles = cli(fleet, "profiles", "--json")
        devices = cli(fleet, "devices")
        untargeted = cli(fleet, "deploy", "motor")
        refused = cli(fleet, "deploy", "motor", "--device", "edge-1")
        forced = cli(fleet, "deploy", "motor", "--all", "--force")

    assert [p["name"] for p in json.loads(profiles.stdout)] == ["mcu", "pi", "ipc", "cloud"]
    assert "edge-1" in devices.stdout and "pi" in devices.stdout
    assert untargeted.returncode == 1
    assert "422" in untargeted.stdout and "--all" in untargeted.stdout
    assert refused.returncode == 1
    refusal = " ".join(refused.stdout.split())
    assert "409" in refusal
    assert "edge-1: (profile pi) model is 100.00 MB, profile pi holds 64.00 MB" in refusal
    assert forced.returncode == 0, forced.stdout
    assert "motor v1 desired on edge-1" in forced.stdout


def test_a_motor_model_is_refused_for_an_imu_device_and_a_forced_one_shows_why_it_fails(
    tmp_path: Path,
) -> None:
    app = tmp_path / "imu.yaml"
    app.write_text(IMU_APP)
    with LocalFleet(tmp_path, ["edge-1", "imu-1"]) as fleet:
        fleet.start_hub()
        fleet.start_agent("edge-1")
        fleet.start_agent("imu-1", app=app)
        wait_until(
            lambda: len([d for d in fleet.client.devices() if d.reported]) == 2,
            timeout_s=60,
            what="both agents to report",
        )
        fleet.client.register_model(
            random_bundle(1, name="motor", labels=("normal", "imbalance", "bearing_wear")).pack()
        )

        refused = cli(fleet, "deploy", "motor", "--all")
        deployed = cli(fleet, "deploy", "motor", "--device", "edge-1")
        forced = cli(fleet, "deploy", "motor", "--device", "imu-1", "--force")
        wait_until(
            lambda: all(
                d.reported and d.reported.status in ("running", "error")
                for d in fleet.client.devices()
            ),
            timeout_s=60,
            what="both agents to apply the model",
        )
        table = cli(fleet, "devices")
        as_json = cli(fleet, "devices", "--json")

    assert refused.returncode == 1
    refusal = " ".join(refused.stdout.split())
    assert "cannot run on 1 of 2 devices: imu-1: model needs sensors" in refusal
    assert deployed.returncode == 0, deployed.stdout
    assert forced.returncode == 0, forced.stdout
    reported = {d["device_id"]: d["reported"] for d in json.loads(as_json.stdout)}
    assert reported["edge-1"]["status"] == "running"
    assert reported["imu-1"]["status"] == "error"
    assert "expects sensors" in reported["imu-1"]["error"]
    imu_row = next(line for line in table.stdout.splitlines() if "imu-1" in line)
    assert "error" in imu_row and "bundle motor v1" in imu_row


def test_devices_tagged_from_the_cli_are_deployed_to_by_tag_and_show_in_the_metrics(
    tmp_path: Path,
) -> None:
    spec = vibration_spec(rate_hz=1000.0, window=250, hop=250)
    bundle = Bundle.create(name="motor", labels=["normal", "worn"], input=spec, model=b"onnx")
    feeds = Feeds(sensors=spec.sensors, rate_hz=spec.rate_hz, extractors=EXTRACTORS.names())
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        for device_id in ("edge-1", "edge-2", "edge-3"):
            _enrol_a_pi(fleet, device_id, feeds)
        fleet.client.register_model(bundle.pack())

        tagged = [
            cli(fleet, "devices", "tag", "edge-1", "site=plant-4", "line=1"),
            cli(fleet, "devices", "tag", "edge-2", "site=plant-4", "line=2"),
            cli(fleet, "devices", "tag", "edge-3", "site=plant-5", "line=2"),
            cli(fleet, "devices", "tag", "edge-1", "line="),
        ]
        as_json = cli(fleet, "devices", "--json")
        unmatched = cli(fleet, "deploy", "motor", "--to", "tag:site=plant-9")
        deployed = cli(fleet, "deploy", "motor", "--to", "tag:site=plant-4")
        scraped = httpx.get(
            f"{fleet.hub_url}/metrics", headers={"Authorization": f"Bearer {fleet.admin_token}"}
        )

    assert [t.returncode for t in tagged] == [0, 0, 0, 0], [t.stdout for t in tagged]
    assert "edge-1 tags: site=plant-4" in tagged[-1].stdout
    tags = {d["device_id"]: d["tags"] for d in json.loads(as_json.stdout)}
    assert tags == {
        "edge-1": {"site": "plant-4"},
        "edge-2": {"line": "2", "site": "plant-4"},
        "edge-3": {"line": "2", "site": "plant-5"},
    }
    assert unmatched.returncode == 1
    assert "no enrolled device matches tag:site=plant-9" in " ".join(unmatched.stdout.split())
    assert deployed.returncode == 0, deployed.stdout
    assert "motor v1 desired on edge-1, edge-2" in deployed.stdout
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    desired = {
        s.labels["device"]: s.value
        for s in families["edgestack_bundle_version"].samples
        if s.labels["side"] == "desired"
    }
    assert desired == {"edge-1": 1, "edge-2": 1}
