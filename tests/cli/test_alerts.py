"""Posting feedback from the command line: bad options are named before the hub is asked."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgestack.cli import app

# No hub listens here: an option refused before any call never gets that far.
NO_HUB = {"EDGESTACK_HUB_URL": "http://127.0.0.1:9"}
SPAN = ["--from", "2025-01-01T00:00:00Z", "--to", "2025-01-01T01:00:00Z"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["feedback", "motor-1", "--label", "worn"], "--from, --to"),
        (["feedback", "--label", "worn", *SPAN], "DEVICE"),
        (["feedback", "Motor_1", "--label", "worn", *SPAN], "DEVICE 'Motor_1'"),
        (["feedback", "motor-1", "--label", "Worn\tout", *SPAN], "--label 'Worn\\tout'"),
        (
            ["feedback", "motor-1", "--label", "worn", *SPAN[:2], "--to", "2024-12-31T00:00Z"],
            "--to '2024-12-31T00:00Z'",
        ),
    ],
)
def test_a_bad_span_is_named_in_one_line_before_the_hub_is_asked(
    args: list[str], named: str
) -> None:
    result = CliRunner().invoke(app, args, env=NO_HUB)

    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert output.startswith(f"error: {named}")
    assert "cannot reach the hub" not in output


def test_a_bad_row_of_a_file_is_named_by_its_line(tmp_path: Path) -> None:
    spans = tmp_path / "spans.csv"
    spans.write_text(
        "device_id,start,end,label,note\n"
        "motor-1,2025-01-01T00:00:00Z,2025-01-01T01:00:00Z,worn,checked\n"
        "motor-1,2025-01-01T02:00:00Z,2025-01-01T01:00:00Z,worn,\n"
    )

    result = CliRunner().invoke(app, ["feedback", "--file", str(spans)], env=NO_HUB)

    assert result.exit_code == 2
    # The console wraps a long path anywhere: compared without the spaces it put in.
    assert "".join(result.output.split()).startswith(f"error:{spans}:3:end:")
    assert "must come after start" in " ".join(result.output.split())


def test_a_file_and_a_span_on_the_command_line_are_refused_together(tmp_path: Path) -> None:
    spans = tmp_path / "spans.csv"
    spans.write_text("device_id,start,end,label\n")

    result = CliRunner().invoke(app, ["feedback", "motor-1", "--file", str(spans)], env=NO_HUB)

    assert result.exit_code == 2
    assert "not both" in " ".join(result.output.split())


def test_a_file_without_spans_is_refused(tmp_path: Path) -> None:
    spans = tmp_path / "spans.csv"
    spans.write_text("device_id,start,end,label\n")

    result = CliRunner().invoke(app, ["feedback", "--file", str(spans)], env=NO_HUB)

    assert result.exit_code == 2
    assert "holds no spans" in " ".join(result.output.split())
