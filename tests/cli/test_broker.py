"""`edgestack broker config`: a Mosquitto configuration and the hub's own account."""

from pathlib import Path

from typer.testing import CliRunner

from edgestack.cli import app
from edgestack.hub.broker import ACL_FILE, PASSWORD_FILE
from edgestack.hub.store import accounts


def test_the_configuration_refuses_anonymous_clients_and_holds_the_hubs_account(
    tmp_path: Path,
) -> None:
    env = {"EDGESTACK_HUB_BROKER_PASSWORD": "hub-secret", "EDGESTACK_HUB_BROKER_ACCOUNTS": None}

    result = CliRunner().invoke(
        app, ["broker", "config", "--accounts", str(tmp_path), "--port", "1999"], env=env
    )

    assert result.exit_code == 0, result.output
    conf = (tmp_path / "mosquitto.conf").read_text().splitlines()
    assert {"listener 1999 127.0.0.1", "allow_anonymous false"} <= set(conf)
    assert f"password_file {tmp_path / PASSWORD_FILE}" in conf
    assert f"acl_file {tmp_path / ACL_FILE}" in conf
    user, hashed = (tmp_path / PASSWORD_FILE).read_text().strip().split(":", 1)
    assert user == "edgestack_hub" and accounts.verify("hub-secret", hashed)


def test_without_a_folder_it_names_the_option_and_the_setting() -> None:
    env = {"EDGESTACK_HUB_BROKER_ACCOUNTS": None}

    result = CliRunner().invoke(app, ["broker", "config"], env=env)

    assert result.exit_code == 2
    assert "EDGESTACK_HUB_BROKER_ACCOUNTS" in " ".join(result.output.split())
