"""`edgestack evaluate MODEL[@VERSION] [DATASET[@VERSION]]` read before the hub is asked."""

import pytest
from typer.testing import CliRunner

from edgestack.cli import app

NO_HUB = ["--hub", "http://127.0.0.1:9"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["m@2", "--version", "3"], "--version: MODEL 'm@2' names its version already"),
        (["m", "d@1", "--dataset-version", "1"], "--dataset-version: DATASET 'd@1' names"),
        (["m@0"], "MODEL 'm@0': versions count from 1"),
        (["m", "d", "--dataset", "e"], "--dataset: the dataset is named twice"),
    ],
)
def test_a_version_named_twice_is_refused_before_the_hub_is_asked(
    args: list[str], says: str
) -> None:
    result = CliRunner().invoke(app, ["evaluate", *args, *NO_HUB], env={"COLUMNS": "300"})

    assert result.exit_code == 2
    assert says in " ".join(result.output.split())


@pytest.mark.parametrize("args", [["m@2", "Arrow Head@3"], ["m", "--version", "2", "a@b"]])
def test_names_and_versions_reach_the_hub_call(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["evaluate", *args, *NO_HUB], env={"COLUMNS": "300"})

    assert result.exit_code == 1
    assert "cannot reach the hub" in result.output
