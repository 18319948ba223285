"""`edgestack fl start` and `fl keep`: bad options are named, with the fix, before the hub is
asked."""

import pytest
from typer.testing import CliRunner

from edgestack.cli import app

NO_HUB = {"EDGESTACK_HUB_URL": "http://127.0.0.1:9"}
START = ["fl", "start", "--dataset", "motors", "--to", "all"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ([*START, "--dp-noise", "1"], "--dp-noise: noise is scaled by the clipping norm; give "),
        ([*START, "--min-clients", "0"], "--min-clients 0: Input should be greater than"),
        ([*START, "--strategy", "fedsgd"], "--strategy 'fedsgd': Input should be 'fedavg' or"),
        ([*START, "--to", "motor 1"], "--to ['all', 'motor 1']: Value error, 'motor 1' is no"),
        ([*START, "--waves", "50%,half"], "--waves 'half'"),
        ([*START, "--waves", "50%", "--rollout", "--all"], "--waves: give the rollout as"),
        ([*START, "--secagg", "--dp-clip", "1"], "--secagg: the aggregator clips each client's"),
        (["fl", "keep", "edge-1", "--stop", "--label", "worn"], "--stop: it keeps nothing"),
        (["fl", "keep", "edge-1", "--label", "worn"], "--label and --dataset: give both"),
        (["fl", "keep", "edge-1", "--label", "Worn", "--dataset", "m"], "--label 'Worn'"),
        (
            ["fl", "keep", "edge-1", "--label", "worn", "--dataset", "m", "--rows", "pixels"],
            "--rows: 'pixels' is no kind of row",
        ),
    ],
)
def test_a_bad_option_is_named_before_the_hub_is_asked(args: list[str], named: str) -> None:
    result = CliRunner().invoke(app, args, env=NO_HUB)

    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert output.startswith(f"error: {named}")
    assert "cannot reach the hub" not in output
