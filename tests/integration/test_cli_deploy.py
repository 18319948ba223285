"""`edgestack deploy` and `profiles` against a real hub process."""

import json
from pathlib import Path

import httpx
import pytest

from edgestack.bundle import Bundle, Footprint
from edgestack.demo import LocalFleet
from edgestack.processing import vibration_spec
from edgestack.protocol import EnrolRequest, Hardware

from .test_cli import cli

pytestmark = pytest.mark.integration

PI = Hardware(cores=4, ram_mb=2048, arch="aarch64", providers=["CPUExecutionProvider"])
TOO_BIG_FOR_A_PI = Footprint(
    model_bytes=100 * 1024 * 1024, peak_ram_bytes=1024, latency_ms_p50=0.1, latency_ms_p99=0.1
)


def test_deploy_names_the_device_a_model_does_not_fit_and_force_overrides(
    tmp_path: Path,
) -> None:
    bundle = Bundle.create(
        name="motor",
        version=1,
        labels=["normal", "worn"],
        input=vibration_spec(rate_hz=1000.0, window=250, hop=250),
        model=b"onnx-model",
        footprint=TOO_BIG_FOR_A_PI,
    )
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        enrol = EnrolRequest(device_id="edge-1", enrol_token=fleet.enrol_token, hardware=PI)
        httpx.post(f"{fleet.hub_url}/v1/enrol", content=enrol.model_dump_json()).raise_for_status()
        fleet.client.register_model(bundle.pack())

        profiles = cli(fleet, "profiles", "--json")
        devices = cli(fleet, "devices")
        refused = cli(fleet, "deploy", "motor")
        forced = cli(fleet, "deploy", "motor", "--force")

    assert [p["name"] for p in json.loads(profiles.stdout)] == ["mcu", "pi", "ipc", "cloud"]
    assert "edge-1" in devices.stdout and "pi" in devices.stdout
    assert refused.returncode == 1
    refusal = " ".join(refused.stdout.split())
    assert "409" in refusal
    assert "edge-1 (profile pi): model is 100.00 MB, profile pi holds 64.00 MB" in refusal
    assert forced.returncode == 0, forced.stdout
    assert "motor v1 desired on edge-1" in forced.stdout
