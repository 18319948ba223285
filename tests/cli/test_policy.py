"""`edgestack policy set`: a rollout plan written as rollout start's options, read before
the hub is asked."""

import pytest
from typer.testing import CliRunner

from edgestack.cli import app
from edgestack.cli.rollouts import plan_of
from edgestack.protocol import Gate, RolloutPlan

NO_HUB = {"EDGESTACK_HUB_URL": "http://127.0.0.1:9"}


def test_a_rollout_plan_reads_as_rollout_start_reads_its_options() -> None:
    plan = plan_of("--to tag:line=2 --to edge-9 --waves 50%,100% --shadow 2m --gate 'p99_ms<=20'")

    assert plan == RolloutPlan(
        to=["tag:line=2", "edge-9"],
        waves=[0.5, 1.0],
        shadow_s=120.0,
        gate=Gate(p99_ms=20),
    )


@pytest.mark.parametrize(
    ("rollout", "named"),
    [
        ("--all --colour red", "No such option: --colour"),
        ("--all --waves 10%,half", "--waves 'half'"),
        ("--waves 50%,100%", "--to (repeat for several) or --all"),
        ("--all --gate 'speed>=3'", "--gate 'speed>=3'"),
        ("--all --shadow 'unclosed", "--rollout"),
    ],
)
def test_a_bad_rollout_plan_is_named_before_the_hub_is_asked(rollout: str, named: str) -> None:
    result = CliRunner().invoke(
        app,
        ["policy", "set", "retrain-on-drift", "--dataset", "d", "--rollout", rollout],
        env=NO_HUB,
    )

    assert result.exit_code == 2, result.output
    assert named in " ".join(result.output.split())
