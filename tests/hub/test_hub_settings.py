from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from edgestack.hub import HubSettings

_ENV = ("DATA_DIR", "HOST", "PORT", "ADMIN_TOKEN", "ENROL_TOKEN", "ENVIRONMENT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(f"EDGESTACK_HUB_{name}", raising=False)


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
        ({"enrol_token": SecretStr("s3cret-enrol")}, "EDGESTACK_HUB_ADMIN_TOKEN"),
        ({"admin_token": SecretStr("s3cret-admin")}, "EDGESTACK_HUB_ENROL_TOKEN"),
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
    monkeypatch.setenv("EDGESTACK_HUB_ADMIN_TOKEN", "s3cret-admin")
    monkeypatch.setenv("EDGESTACK_HUB_ENROL_TOKEN", "s3cret-enrol")
    monkeypatch.setenv("EDGESTACK_HUB_DATA_DIR", str(tmp_path))

    settings = HubSettings()

    assert settings.environment == "production"
    assert settings.admin_token.get_secret_value() == "s3cret-admin"
    assert settings.data_dir == tmp_path
