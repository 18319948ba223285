from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from edgestack.agent import AgentSettings
from edgestack.cli.common import ClientSettings
from edgestack.hub import HubSettings

ADMIN = "a" * 31 + "-admin-token-of-production"
ENROL = "e" * 31 + "-enrol-token-of-production"

_ENV = (
    "EDGESTACK_HUB_DATA_DIR",
    "EDGESTACK_HUB_HOST",
    "EDGESTACK_HUB_PORT",
    "EDGESTACK_HUB_ENVIRONMENT",
    "EDGESTACK_ADMIN_TOKEN",
    "EDGESTACK_ENROL_TOKEN",
    "EDGESTACK_HUB_URL",
    "EDGESTACK_HUB_ADMIN_TOKEN",
    "EDGESTACK_HUB_ENROL_TOKEN",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def test_development_works_with_the_default_tokens() -> None:
    settings = HubSettings()

    assert settings.admin_token.get_secret_value() == "dev-admin-token"
    assert settings.enrol_token.get_secret_value() == "dev-enrol-token"
    assert (settings.data_dir, settings.host, settings.port) == (
        Path("hub-data"),
        "127.0.0.1",
        8400,
    )


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"enrol_token": SecretStr(ENROL)}, "EDGESTACK_ADMIN_TOKEN"),
        ({"admin_token": SecretStr(ADMIN)}, "EDGESTACK_ENROL_TOKEN"),
    ],
)
def test_production_refuses_a_default_token_and_names_the_variable(
    given: dict[str, SecretStr], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        HubSettings(environment="production", **given)


def test_production_reads_its_tokens_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGESTACK_HUB_ENVIRONMENT", "production")
    monkeypatch.setenv("EDGESTACK_ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("EDGESTACK_ENROL_TOKEN", ENROL)
    monkeypatch.setenv("EDGESTACK_HUB_DATA_DIR", str(tmp_path))

    settings = HubSettings()

    assert settings.environment == "production"
    assert settings.admin_token.get_secret_value() == ADMIN
    assert settings.data_dir == tmp_path


def test_hub_agent_and_cli_read_one_setting_by_one_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESTACK_HUB_URL", "http://hub.example:9000")
    monkeypatch.setenv("EDGESTACK_ADMIN_TOKEN", "s3cret-admin")
    monkeypatch.setenv("EDGESTACK_ENROL_TOKEN", "s3cret-enrol")

    hub = HubSettings()
    agent = AgentSettings(device_id="motor-1")
    cli = ClientSettings()

    assert hub.enrol_token == agent.enrol_token == SecretStr("s3cret-enrol")
    assert hub.admin_token == cli.admin_token == SecretStr("s3cret-admin")
    assert agent.hub_url == cli.hub_url == "http://hub.example:9000"


def test_the_shared_name_wins_over_a_process_prefixed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGESTACK_HUB_ADMIN_TOKEN", "old-admin")
    monkeypatch.setenv("EDGESTACK_ADMIN_TOKEN", "s3cret-admin")

    settings = HubSettings()

    assert settings.admin_token.get_secret_value() == "s3cret-admin"


@pytest.mark.parametrize(
    ("admin", "enrol", "message"),
    [
        ("short-admin", ENROL, "admin_token has 11 characters"),
        (ADMIN, "e" * 31, "enrol_token has 31 characters"),
        (ADMIN, ADMIN, "admin_token equals enrol_token"),
    ],
)
def test_production_refuses_short_tokens_and_an_admin_token_that_enrols(
    admin: str, enrol: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        HubSettings(
            environment="production", admin_token=SecretStr(admin), enrol_token=SecretStr(enrol)
        )


def test_development_keeps_short_and_equal_tokens() -> None:
    settings = HubSettings(admin_token=SecretStr("same"), enrol_token=SecretStr("same"))

    assert settings.admin_token == settings.enrol_token


def test_a_lease_the_controller_would_let_lapse_between_ticks_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"lease_s .* EDGESTACK_HUB_LEASE_S"):
        HubSettings(lease_s=3, control_tick_s=2)

    assert HubSettings(lease_s=5, control_tick_s=2).lease_s == 5
