from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgestack.hub.ray_jobs import parse_jobs
from edgestack.mqttwire import broker_address, is_device_id

__all__ = [
    "DEV_ADMIN_TOKEN",
    "DEV_BROKER_PASSWORD",
    "DEV_ENROL_TOKEN",
    "MIN_TOKEN_LENGTH",
    "HubSettings",
]

# Well known on purpose, so a development hub, the CLI and agents work with no set-up;
# a production hub refuses them.
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_ENROL_TOKEN = "dev-enrol-token"
DEV_BROKER_PASSWORD = "dev-broker-password"
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
    jobs: str = Field(
        default="local",
        max_length=300,
        description="where jobs run: `local`, a process of the hub's worker each, or "
        "`ray://HOST:PORT`, tasks on the Ray cluster whose head's Ray Client listens there",
    )
    jobs_hub_url: str | None = Field(
        default=None,
        max_length=2000,
        description="the hub's URL as a Ray cluster's nodes reach it, e.g. "
        "http://hub.example:8400; null: the address the hub listens on, loopback for a "
        "wildcard host",
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

    retention: bool = Field(
        default=True,
        description="roll up old telemetry and remove old events, windows and batch ids",
    )
    retention_every_s: float = Field(
        default=3600, gt=0, le=7 * 86400, description="how often the controller runs retention"
    )
    retention_batch_rows: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="rows one retention transaction handles, so the hub keeps answering",
    )
    retain_telemetry_days: float = Field(
        default=7,
        gt=0,
        description="telemetry batches older than this are rolled up per device and hour, "
        "then removed",
    )
    retain_rollups_days: float = Field(
        default=400,
        gt=0,
        description="roll-ups of telemetry are removed once their hour is older than this",
    )
    retain_events_days: float = Field(
        default=30, gt=0, description="events older than this are removed"
    )
    retain_windows_days: float = Field(
        default=30,
        gt=0,
        description="windows sent for review and never labelled are removed after this; "
        "samples, and labelled windows, are the training set and kept",
    )
    retain_batch_ids_days: float = Field(
        default=90,
        gt=0,
        description="how long the ids of batches received are kept, so one resent is stored "
        "once: at least as long as telemetry and events, and as long as an agent's outbox "
        "may hold a batch the hub took",
    )
    broker_url: str | None = Field(
        default=None,
        description="an MQTT broker (mqtt://host:port) devices may reach the hub through; "
        "the hub bridges it to its store",
    )
    broker_user: str = Field(
        default="edgestack_hub",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="the hub's own user name on the broker; never a device id, so no device "
        "can enrol under it (device ids have no '_', '.' or capitals)",
    )
    broker_password: SecretStr = Field(
        default=SecretStr(DEV_BROKER_PASSWORD), description="the hub's own broker password"
    )
    broker_accounts: Path | None = Field(
        default=None,
        description="a folder the hub keeps the broker's password file (`passwd`) and ACL "
        "file (`acl`) in, rewritten at start and on each enrolment",
    )
    broker_reload: str | None = Field(
        default=None,
        max_length=4096,
        description="a command run after the account files change, for the broker to reread "
        "them, e.g. `systemctl reload mosquitto`",
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

    @field_validator("jobs")
    @classmethod
    def _jobs_where_they_can_run(cls, value: str) -> str:
        parse_jobs(value)
        return value

    @field_validator("jobs_hub_url")
    @classmethod
    def _jobs_hub_url_is_a_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"'{value[:100]}' is no URL; set EDGESTACK_HUB_JOBS_HUB_URL to the hub's "
                "address as the Ray cluster's nodes reach it, e.g. http://hub.example:8400"
            )
        return value

    @model_validator(mode="after")
    def _batch_ids_outlive_what_they_guard(self) -> "HubSettings":
        # A batch resent once its id is gone but its rows are still kept would be stored twice.
        for field in ("retain_telemetry_days", "retain_events_days"):
            if self.retain_batch_ids_days < getattr(self, field):
                raise ValueError(
                    f"retain_batch_ids_days ({self.retain_batch_ids_days:g}) is shorter than "
                    f"{field} ({getattr(self, field):g}): a batch resent in between would be "
                    f"stored twice; set EDGESTACK_HUB_RETAIN_BATCH_IDS_DAYS to at least "
                    f"{getattr(self, field):g}"
                )
        return self

    @field_validator("broker_url")
    @classmethod
    def _broker_address(cls, url: str | None) -> str | None:
        if url is not None:
            broker_address(url)
        return url

    @field_validator("broker_user")
    @classmethod
    def _no_device_id(cls, user: str) -> str:
        if is_device_id(user):
            raise ValueError(
                f"{user!r} could be a device's id, and that device would log in to the broker "
                "as the hub; give a name with a '_', '.' or a capital, such as edgestack_hub"
            )
        return user

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
        if (
            self.broker_url is not None
            and self.broker_password.get_secret_value() == DEV_BROKER_PASSWORD
        ):
            raise ValueError(
                "broker_password is the development default, refused in production; set "
                "EDGESTACK_HUB_BROKER_PASSWORD to a secret value"
            )
        if self.admin_token.get_secret_value() == self.enrol_token.get_secret_value():
            raise ValueError(
                "admin_token equals enrol_token, refused in production: a device's enrolment "
                "token would also run the fleet; set EDGESTACK_ADMIN_TOKEN and "
                "EDGESTACK_ENROL_TOKEN to different values"
            )
        return self
