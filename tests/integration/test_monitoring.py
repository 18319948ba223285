"""Monitoring end to end: a real agent watches the model it runs, and the hub shows it."""

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bundles import random_bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.hub.store.telemetry import DRIFT_WINDOWS
from edgestack.processing import vibration_spec
from edgestack.protocol import DesiredPatch, TelemetryTotals

from .test_cli import cli

pytestmark = pytest.mark.integration


def test_an_agent_running_a_bundle_with_a_reference_reports_drift_the_hub_shows(
    tmp_path: Path,
) -> None:
    # Short windows, so the hub has enough of them for a drift score within seconds. The
    # model was fit to random rows: the motor's live features lie far from them.
    spec = vibration_spec(window=512, hop=512)
    bundle = random_bundle(1, name="motor", spec=spec, with_reference=True)
    with LocalFleet(tmp_path, ["edge-1"]) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        client = fleet.client
        wait_until(lambda: any(d.reported for d in client.devices()), timeout_s=60, what="a report")
        client.update_desired("edge-1", DesiredPatch(telemetry_interval_s=1))
        client.register_model(bundle.pack())
        deployed = cli(fleet, "deploy", "motor", "--device", "edge-1")

        def scored() -> TelemetryTotals | None:
            totals = client.device("edge-1").telemetry
            return totals if totals.drift_psi is not None else None

        totals = wait_until(scored, timeout_s=90, what="a drift score")
        shown = cli(fleet, "devices", "show", "edge-1")
        as_json = cli(fleet, "devices", "show", "edge-1", "--json")
        scraped = httpx.get(
            f"{fleet.hub_url}/metrics", headers={"Authorization": f"Bearer {fleet.admin_token}"}
        )

    assert deployed.returncode == 0, deployed.stdout
    assert totals.drift_windows >= DRIFT_WINDOWS
    assert totals.drift_psi is not None and totals.drift_psi > 0.2
    assert set(totals.drift_psi_by_feature) <= set(spec.features)
    assert totals.p99_ms is not None and totals.throughput is not None and totals.throughput > 0
    assert totals.rss_bytes is not None and totals.rss_bytes > 0
    assert set(totals.changes) == {"confidence", "anomaly"}
    assert shown.returncode == 0, shown.stdout
    assert "drift PSI / KS" in shown.stdout and "feature" in shown.stdout
    assert json.loads(as_json.stdout)["telemetry"]["drift_psi"] is not None
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    (psi,) = [s for s in families["edgestack_drift_psi"].samples if s.labels["device"] == "edge-1"]
    assert psi.labels["model"] == "motor" and psi.value > 0.2
    assert families["edgestack_feature_drift_psi"].samples
