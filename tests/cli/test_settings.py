"""Each process reads one name per setting, and says which to set when one is missing."""

from typer.testing import CliRunner

from edgestack.cli import app


def test_an_agent_without_an_enrolment_token_names_the_setting_and_the_fix() -> None:
    unset = {"EDGESTACK_ENROL_TOKEN": None, "EDGESTACK_AGENT_ENROL_TOKEN": None}

    result = CliRunner().invoke(app, ["agent", "--device-id", "motor-1"], env=unset)

    assert result.exit_code == 2
    assert "EDGESTACK_ENROL_TOKEN: not set; give its option" in " ".join(result.output.split())
