from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEV_ADMIN_TOKEN", "DEV_ENROL_TOKEN", "MIN_TOKEN_LENGTH", "HubSettings"]

# Well known on purpose, so a development hub, the CLI and agents work with no set-up;
# a production hub refuses them.
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_ENROL_TOKEN = "dev-enrol-token"
MIN_TOKEN_LENGTH = 32


class HubSettings(BaseSettings):
    """Everything the hub process is configured with; env vars `EDGESTACK_HUB_*`, except the
    tokens, `EDGESTACK_ADMIN_TOKEN` and `EDGESTACK_ENROL_TOKEN`, named as the CLI and the
    agents name them.

    The tokens default to `dev-admin-token` and `dev-enrol-token`. When `environment` is
    `production`, each token must be at least `MIN_TOKEN_LENGTH` characters and the two
    must differ: whoever enrols devices must not thereby hold the fleet.
    """

    model_config = SettingsConfigDict(env_prefix="EDGESTACK_HUB_", populate_by_name=True)

    data_dir: Path = Path("hub-data")
    database_url: str | None = Field(
        default=None,
        min_length=1,
        description="the database: postgresql+psycopg://user:password@host:port/name, or "
        "sqlite:///path; unset: the SQLite file hub.db in data_dir, which holds artifacts "
        "and keys either way",
    )
    host: str = "127.0.0.1"
    port: int = 8400
    admin_token: SecretStr = Field(
        default=SecretStr(DEV_ADMIN_TOKEN), validation_alias="EDGESTACK_ADMIN_TOKEN"
    )
    enrol_token: SecretStr = Field(
        default=SecretStr(DEV_ENROL_TOKEN), validation_alias="EDGESTACK_ENROL_TOKEN"
    )
    environment: Literal["development", "production"] = "development"
    signature_days: float = Field(
        default=365, gt=0, description="how long a bundle's signature lets devices install it"
    )
    jobs_worker: bool = Field(
        default=True, description="start the worker process that runs training and other jobs"
    )
    fl_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        max_length=253,
        description="where a federated job's aggregator listens, the address devices dial: "
        "loopback reaches only agents on this machine; a name or address they resolve",
    )
    fl_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="the port a federated job's aggregator listens on; 0: a free one per job",
    )
    control_tick_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often the controller steps rollouts and policy runs",
    )
    lease_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="how long a hub replica holds the controller's or webhook delivery's lease "
        "without renewing it: one killed holding it is replaced after at most this long",
    )
    webhook_attempts: int = Field(
        default=8, ge=1, le=100, description="attempts to deliver an event before giving up on it"
    )
    webhook_backoff_s: float = Field(
        default=1.0, gt=0, le=3600, description="the wait after a webhook's first failed attempt"
    )
    webhook_backoff_cap_s: float = Field(
        default=600.0,
        gt=0,
        le=86400,
        description="the longest wait between attempts, each wait doubling the one before",
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="how long a webhook's receiver has to answer"
    )
    webhook_log_rows: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="attempts kept in each webhook's delivery log; older ones are deleted",
    )

    login_failures: int = Field(
        default=10,
        ge=1,
        description="failed logins an address may make in login_window_s, per hub process",
    )
    login_window_s: float = Field(
        default=300, gt=0, le=86400, description="the sliding window failed logins count in"
    )
    enrol_attempts: int = Field(
        default=60,
        ge=1,
        description="enrolments an address may ask for in enrol_window_s, per hub process",
    )
    enrol_window_s: float = Field(
        default=60, gt=0, le=86400, description="the sliding window enrolments count in"
    )

    @model_validator(mode="after")
    def _lease_outlasts_tick(self) -> "HubSettings":
        # The controller renews its lease once a tick; a shorter lease would lapse between.
        if self.lease_s <= 2 * self.control_tick_s:
            raise ValueError(
                f"lease_s ({self.lease_s}) must be more than twice control_tick_s "
                f"({self.control_tick_s}), which renews it; raise EDGESTACK_HUB_LEASE_S or "
                "lower EDGESTACK_HUB_CONTROL_TICK_S"
            )
        return self

    @model_validator(mode="after")
    def _secret_tokens_in_production(self) -> "HubSettings":
        if self.environment != "production":
            return self
        for field, default in (("admin_token", DEV_ADMIN_TOKEN), ("enrol_token", DEV_ENROL_TOKEN)):
            value = getattr(self, field).get_secret_value()
            variable = f"EDGESTACK_{field.upper()}"
            if value == default:
                raise ValueError(
                    f"{field} is the development default, refused in production; "
                    f"set {variable} to a secret value"
                )
            if len(value) < MIN_TOKEN_LENGTH:
                raise ValueError(
                    f"{field} has {len(value)} characters, refused in production; set "
                    f"{variable} to a random value of at least {MIN_TOKEN_LENGTH}, e.g. from "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
        if self.admin_token.get_secret_value() == self.enrol_token.get_secret_value():
            raise ValueError(
                "admin_token equals enrol_token, refused in production: a device's enrolment "
                "token would also run the fleet; set EDGESTACK_ADMIN_TOKEN and "
                "EDGESTACK_ENROL_TOKEN to different values"
            )
        return self
