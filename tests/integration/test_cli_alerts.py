"""`edgestack alerts`, `alerts rules`, `feedback` and `accuracy` against a real hub."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from edgestack.cli import app
from edgestack.demo import LocalFleet
from edgestack.protocol import MonitorReport, TelemetryBatch

from .test_event_stream import _enrol

pytestmark = pytest.mark.integration

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _telemetry(fleet: LocalFleet, auth: dict[str, str], seq: int, p99_ms: float) -> None:
    batch = TelemetryBatch(
        batch_id=uuid.uuid4(),
        seq=seq,
        start=T0 + timedelta(seconds=5 * (seq - 1)),
        end=T0 + timedelta(seconds=5 * seq),
        windows=10,
        predictions={"normal": 7, "worn": 3},
        raw_bytes=1000,
        uplink_bytes=100,
        bundle_digest="ab" * 32,
        monitoring=MonitorReport(p99_ms=p99_ms),
    )
    response = httpx.post(
        f"{fleet.hub_url}/v1/devices/edge-1/telemetry",
        content=batch.model_dump_json(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


def test_rules_alerts_feedback_and_accuracy_from_the_command_line(tmp_path: Path) -> None:
    spans = tmp_path / "spans.csv"
    spans.write_text(
        "device_id,start,end,label\n"
        f"edge-1,{T0.isoformat()},{(T0 + timedelta(seconds=5)).isoformat()},normal\n"
    )
    with LocalFleet(tmp_path / "fleet", []) as fleet:
        fleet.start_hub()
        env = {
            "EDGESTACK_HUB_URL": fleet.hub_url,
            "EDGESTACK_ADMIN_TOKEN": fleet.admin_token,
            "COLUMNS": "200",
        }

        def edgestack(*args: str) -> Result:
            return CliRunner().invoke(app, list(args), env=env)

        auth = _enrol(fleet, "edge-1")
        wrong_side = edgestack("alerts", "rules", "set", "drift_psi", "--clear", "0.5")
        set_rule = edgestack(
            "alerts", "rules", "set", "p99_ms", "--raise", "30", "--clear", "10", "--for", "1"
        )
        _telemetry(fleet, auth, 1, 25.0)
        _telemetry(fleet, auth, 2, 40.0)
        listed = edgestack("alerts", "--open", "--json")
        table = edgestack("alerts")
        no_zone = edgestack(
            "feedback", "edge-1", "--label", "worn", "--from", "2025-01-01T00:00:05",
            "--to", "2025-01-01T00:00:10Z",
        )  # fmt: skip
        one = edgestack(
            "feedback", "edge-1", "--label", "worn", "--from", "2025-01-01T00:00:05Z",
            "--to", "2025-01-01T00:00:10Z",
        )  # fmt: skip
        from_file = edgestack("feedback", "--file", str(spans))
        accuracy = edgestack("accuracy", "--json")
        accuracy_table = edgestack("accuracy")

    assert wrong_side.exit_code == 2
    assert "--clear 0.5: drift_psi is bad when high" in " ".join(wrong_side.output.split())
    assert set_rule.exit_code == 0, set_rule.output
    assert ">= 30" in set_rule.output and "<= 10" in set_rule.output
    assert listed.exit_code == 0, listed.output
    [alert] = json.loads(listed.output)
    assert (alert["device_id"], alert["signal"], alert["first_value"]) == (
        "edge-1",
        "p99_ms",
        40.0,
    )
    assert "p99_ms" in table.output and "open" in table.output
    assert no_zone.exit_code == 2
    assert no_zone.output.startswith("error: --from '2025-01-01T00:00:05': ")
    assert one.exit_code == from_file.exit_code == 0, one.output + from_file.output
    assert "1 labelled span posted" in from_file.output
    [row] = json.loads(accuracy.output)
    # batch 1 (0..5 s) labelled normal: 7 of 10; batch 2 (5..10 s) labelled worn: 3 of 10
    assert (row["accuracy"], row["labelled_windows"]) == (0.5, 20)
    assert "0.500" in accuracy_table.output
