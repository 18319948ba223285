"""`edgestack devices set|inject` and `undeploy`: bad options refused before the hub is asked."""

import pytest
from typer.testing import CliRunner

from edgestack.cli import app

NO_HUB = {"EDGESTACK_HUB_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["devices", "set", "edge-1"], "nothing to set"),
        (["devices", "set", "edge-1", "--rule", "x=1", "--app-rules"], "--rule and --app-rules"),
        (["devices", "set", "edge-1", "--profile", "pi", "--hardware-profile"], "give one"),
        (["devices", "inject", "edge-1", "Bad Kind"], "--kind 'Bad Kind'"),
        (["devices", "inject", "edge-1", "imbalance", "--severity", "11"], "--severity 11"),
        (["undeploy", "--device", "Edge_1"], "--device 'Edge_1'"),
    ],
)
def test_a_bad_twin_command_is_refused_before_the_hub_is_asked(args: list[str], says: str) -> None:
    result = CliRunner().invoke(app, args, env=NO_HUB)

    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert "cannot reach the hub" not in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["offload", "set", "edge-1", "big@two"], "write MODEL or MODEL@VERSION"),
        (["offload", "set", "edge-1", "big", "--gate", "guess"], "'guess' is not one of"),
        (["offload", "set", "edge-1", "big", "--tier", "fog"], "'fog' is not one of"),
    ],
)
def test_a_bad_offload_command_is_refused_before_the_hub_is_asked(
    args: list[str], says: str
) -> None:
    result = CliRunner().invoke(app, args, env=NO_HUB)

    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert "cannot reach the hub" not in result.output
