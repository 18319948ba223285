"""Adding a webhook from the command line: a bad URL or filter is refused before the hub is
asked."""

import pytest
from typer.testing import CliRunner

from edgestack.cli import app

# No hub listens here: an option refused before any call never gets that far.
NO_HUB = {"EDGESTACK_HUB_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["ftp://files.example/in"], "'ftp://files.example/in' is no webhook URL; give an http"),
        (["http://a.example", "--tag", "site"], "--tag ['site']: Value error, 'site' is no tag"),
        (["http://a.example", "--severity", "dire"], "--severity 'dire': Input should be"),
    ],
)
def test_a_bad_webhook_is_refused_before_the_hub_is_asked(args: list[str], said: str) -> None:
    result = CliRunner().invoke(app, ["webhooks", "add", *args], env=NO_HUB)

    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert said in output
    assert "cannot reach the hub" not in output
