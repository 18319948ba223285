"""`edgestack rollout`: options refused before the hub is asked, and tables at 80 columns."""

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console
from typer.testing import CliRunner

from edgestack.cli import app
from edgestack.cli.common import Listing
from edgestack.cli.rollouts import rollouts_listing, waves_listing
from edgestack.protocol import (
    BundleRef,
    Gate,
    GateReadings,
    RolloutRequest,
    RolloutView,
    WaveView,
)

NO_HUB = {"EDGESTACK_HUB_URL": "http://127.0.0.1:9"}
AT = datetime(2026, 11, 30, 12, 30, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--all", "--waves", "10%,half"], "--waves 'half'"),
        (["--all", "--waves", "50%,20%"], "--waves [0.5, 0.2]"),
        (["--all", "--shadow", "a minute"], "--shadow 'a minute'"),
        (["--all", "--gate", "agreement<=0.9"], "--gate 'agreement<=0.9'"),
        (["--all", "--gate", "latency<=20"], "--gate 'latency<=20'"),
        (["--all", "--abort-failures", "150%"], "--abort-failures 1.5"),
        (["--to", "Motor_7"], "--to ['Motor_7']"),
    ],
)
def test_a_bad_option_is_named_in_one_line_before_the_hub_is_asked(
    args: list[str], named: str
) -> None:
    result = CliRunner().invoke(app, ["rollout", "start", "motor", *args], env=NO_HUB)

    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert output.startswith(f"error: {named}: "), output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "args", [["motor"], ["motor", "--all", "--to", "d1"], ["motor@latest", "--all"]]
)
def test_a_rollout_without_one_choice_of_devices_or_a_numeric_version_is_refused(
    args: list[str],
) -> None:
    result = CliRunner().invoke(app, ["rollout", "start", *args], env=NO_HUB)

    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "cannot reach the hub" not in result.output


def _rollout() -> RolloutView:
    v1 = BundleRef(name="motor-faults-line-4", version=11, digest="ab" * 32)
    devices = [f"press-line-4-motor-{i}" for i in range(12)]
    readings = GateReadings(
        windows=123456, agreement=0.9731, p99_ms=12.5, error_rate=0.0, drift_psi=0.31
    )
    return RolloutView(
        id=12,
        candidate=v1.model_copy(update={"version": 12}),
        state="rolled_back",
        request=RolloutRequest(
            model="motor-faults-line-4",
            to=["tag:site=plant-4"],
            gate=Gate.parse("agreement>=0.95,p99_ms<=20,error_rate<=0.01,drift_psi<=0.2"),
        ),
        wave=1,
        waves=[
            WaveView(devices=devices[:2], state="promoted", readings=readings, verdict="held"),
            WaveView(
                devices=devices[2:6],
                state="rolled_back",
                started_at=AT,
                readings=readings,
                verdict="gate failed: drift_psi 0.31 (want <= 0.2)",
            ),
            WaveView(devices=devices[6:], state="waiting"),
        ],
        previous=dict.fromkeys(devices, v1),
        created_at=AT,
        finished_at=AT,
    )


def _render(listing: Listing) -> str:
    to = Console(width=80, record=True, file=io.StringIO())
    to.print(listing.render(to))
    return to.export_text()


@pytest.mark.parametrize("listing", [rollouts_listing([_rollout()]), waves_listing(_rollout())])
def test_rollout_tables_fit_80_columns_with_no_value_cut(listing: Listing) -> None:
    text = _render(listing)

    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    assert "rolled_back" in text


def test_the_waves_table_marks_each_reading_against_its_threshold() -> None:
    listing = waves_listing(_rollout())

    cells = dict(zip(listing.headers, listing.cells[1], strict=True))

    assert cells["agreement"] == "0.973 ok"
    assert cells["psi"] == "0.31 FAIL"
    assert cells["windows"] == "123456"
    assert listing.cells[2][3:8] == ["-"] * 5
