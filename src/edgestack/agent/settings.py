from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgestack.agent.monitor import DEFAULT_DETECTOR
from edgestack.monitoring import DETECTORS
from edgestack.mqttwire import broker_address
from edgestack.protocol import DeviceId

__all__ = ["AgentSettings"]


class AgentSettings(BaseSettings):
    """Everything one agent process is configured with; env vars `EDGESTACK_AGENT_*`, except
    `EDGESTACK_HUB_URL` and `EDGESTACK_ENROL_TOKEN`, named as the hub and the CLI name them."""

    model_config = SettingsConfigDict(env_prefix="EDGESTACK_AGENT_", populate_by_name=True)

    hub_url: str = Field(default="http://127.0.0.1:8400", validation_alias="EDGESTACK_HUB_URL")
    enrol_token: SecretStr = Field(
        validation_alias="EDGESTACK_ENROL_TOKEN",
        description="the fleet's enrolment token, printed by a development hub at start",
    )
    device_id: DeviceId
    transport: str = Field(
        default="http",
        description="how the twin and telemetry travel: http, or mqtt://host:port, a broker "
        "the hub bridges (enrolment, bundles and inference stay on HTTP)",
    )
    data_dir: Path = Path("agent-data")
    app: Path | None = Field(
        default=None, description="the app spec (YAML); the simulated motor app when left out"
    )
    seed: int = Field(default=0, description="which simulated machine the motor app watches")
    chunk_s: float = Field(default=0.1, gt=0, le=5, description="sensor read period")
    poll_wait_s: float = Field(default=25, ge=0, le=60, description="long-poll wait for the twin")
    drain_timeout_s: float = Field(default=3, ge=0, description="time to flush the outbox on stop")
    monitoring: bool = Field(
        default=True,
        description="watch the running model (latency, confidence, drift, anomaly) and report "
        "it in telemetry; off, the hot path does none of that work",
    )
    detector: str = Field(
        default=DEFAULT_DETECTOR,
        description="the change detector (one of edgestack.monitoring.DETECTORS) watching "
        "each window's confidence and anomaly score",
    )

    serve: bool = Field(
        default=False,
        description="also be an edge node: answer devices' offloaded windows with bundles "
        "fetched from the hub",
    )
    serve_host: str = Field(
        default="127.0.0.1", description="the address an edge node answers on (with serve)"
    )
    serve_port: int = Field(
        default=8401, ge=0, le=65535, description="the port an edge node answers on; 0: any"
    )

    @field_validator("hub_url")
    @classmethod
    def _an_http_url(cls, url: str) -> str:
        # Anything else would be retried as an outage, forever.
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"{url!r} is no hub URL; give one starting with http:// or https://, such as "
                "http://127.0.0.1:8400"
            )
        return url

    @field_validator("transport")
    @classmethod
    def _a_transport(cls, transport: str) -> str:
        if transport != "http":
            try:
                broker_address(transport)
            except ValueError as exc:
                raise ValueError(f"{exc}, or give http") from None
        return transport

    @field_validator("detector")
    @classmethod
    def _a_detector(cls, name: str) -> str:
        DETECTORS.get(name)  # an unknown name fails here, listing the known ones
        return name
