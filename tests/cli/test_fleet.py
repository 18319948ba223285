"""Steering the fleet and training from the command line: bad options are named before the
hub is asked."""

import pytest
from typer.testing import CliRunner

from edgestack.cli import app

# No hub listens here: an option refused before any call never gets that far.
NO_HUB = {"EDGESTACK_HUB_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["deploy", "motors", "--device", "Motor_7"], "--device 'Motor_7'"),
        (["deploy", "motors", "--version", "0", "--all"], "--version 0"),
        (["deploy", "Motors!", "--all"], "MODEL 'Motors!'"),
        (["deploy", "motors", "--to", "site=plant-4"], "--to 'site=plant-4'"),
        (["devices", "tag", "motor-1", "site"], "tag 'site'"),
        (["devices", "tag", "motor-1", "site=plant 4"], "tag 'plant 4'"),
        (["devices", "tag", "motor-1", "--remove", "Site"], "tag 'Site'"),
        (["devices", "list", "--tag", "site"], "--tag 'site'"),
        (["devices", "list", "--status", "asleep"], "--status 'asleep'"),
        (["jobs", "list", "--state", "asleep"], "--state 'asleep'"),
        (["fleet", "simulate", "--transport", "pigeon"], "--transport 'pigeon'"),
        (["fleet", "simulate", "--prefix", "Sim_"], "--prefix"),
    ],
)
def test_a_bad_option_is_named_in_one_line_before_the_hub_is_asked(
    args: list[str], named: str
) -> None:
    result = CliRunner().invoke(app, args, env=NO_HUB)

    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert output.startswith(f"error: {named}: ")
    assert "Traceback" not in output


def test_train_under_a_name_no_model_may_have_is_refused_before_any_call() -> None:
    args = ["train", "motors", "--model", "decision_tree", "--name", "Motors!"]

    result = CliRunner().invoke(app, args, env=NO_HUB)

    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert output.startswith("error: --name 'Motors!': ")
    assert "cannot reach the hub" not in output
