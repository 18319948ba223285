"""What the README shows runs as written."""

import re
from pathlib import Path

import pytest

from edgestack.appspec import parse_app_spec

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
