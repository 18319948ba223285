"""Each process reads one name per setting, and says which to set when one is missing."""

from typer.testing import CliRunner

from edgestack.cli import app


def test_an_agent_without_an_enrolment_token_names_the_setting_and_the_fix() -> None:
    unset = {"EDGESTACK_ENROL_TOKEN": None, "EDGESTACK_AGENT_ENROL_TOKEN": None}

    result = CliRunner().invoke(app, ["agent", "--device-id", "motor-1"], env=unset)

    assert result.exit_code == 2
    assert "EDGESTACK_ENROL_TOKEN: not set; give its option" in " ".join(result.output.split())


def test_a_production_hub_with_a_short_token_says_which_and_the_fix_in_one_line() -> None:
    env = {
        "EDGESTACK_HUB_ENVIRONMENT": "production",
        "EDGESTACK_ADMIN_TOKEN": "short",
        "EDGESTACK_ENROL_TOKEN": "e" * 40,
    }

    result = CliRunner().invoke(app, ["hub", "--port", "0"], env=env)

    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert output.startswith("error: admin_token has 5 characters, refused in production")
    assert "EDGESTACK_ADMIN_TOKEN" in output
    assert "Value error" not in output


def test_an_agent_given_no_http_url_for_the_hub_says_so_instead_of_retrying() -> None:
    args = ["agent", "--hub", "127.0.0.1:8400", "--token", "t", "--device-id", "motor-1"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert output.startswith("error: hub_url: '127.0.0.1:8400' is no hub URL")
