"""What the README shows runs as written."""

import re
from pathlib import Path

import pytest
import typer.main

from edgestack.appspec import parse_app_spec
from edgestack.cli import app as cli_app

README = Path(__file__).resolve().parents[1] / "README.md"
YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_shows_app_specs() -> None:
    assert len(YAML_BLOCKS) >= 2


@pytest.mark.parametrize("text", YAML_BLOCKS, ids=lambda text: text.split("\n", 1)[0])
def test_every_app_spec_of_the_readme_loads_and_starts(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where relative sink paths land

    app = parse_app_spec(text, origin="README.md")
    source = app.source()
    sinks = app.build_sinks()
    try:
        spec = app.input_spec(source)
    finally:
        source.close()
        for sink in sinks:
            sink.close()

    assert spec.window == app.window
    assert spec.features


def _command_lines() -> list[list[str]]:
    return [line.split() for line in README.read_text().splitlines() if "edgestack " in line]


def _commands() -> list[tuple[str, ...]]:
    group = typer.main.get_command(cli_app)
    assert isinstance(group, typer.core.TyperGroup)
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((name,))
        found.extend((name, sub) for sub in getattr(command, "commands", {}))
    return found


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_the_readme_names_every_command(command: tuple[str, ...]) -> None:
    group, *sub = command
    lines = _command_lines()

    # `edgestack devices | models | events` names models too; a subcommand sits on a line
    # of its group.
    assert any(group in words for words in lines), group
    if sub:
        assert any(f"edgestack {group}" in " ".join(w) and sub[0] in w for w in lines), sub
