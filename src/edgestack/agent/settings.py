from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgestack.protocol import DeviceId

__all__ = ["AgentSettings"]


class AgentSettings(BaseSettings):
    """Everything one agent process is configured with; env vars `EDGESTACK_AGENT_*`."""

    model_config = SettingsConfigDict(env_prefix="EDGESTACK_AGENT_")

    hub_url: str = "http://127.0.0.1:8400"
    enrol_token: SecretStr = Field(description="the fleet's enrolment token, from the hub operator")
    device_id: DeviceId
    data_dir: Path = Path("agent-data")
    app: Path | None = Field(
        default=None, description="the app spec (YAML); the simulated motor app when left out"
    )
    seed: int = Field(default=0, description="which simulated machine the motor app watches")
    chunk_s: float = Field(default=0.1, gt=0, le=5, description="sensor read period")
    poll_wait_s: float = Field(default=25, ge=0, le=60, description="long-poll wait for the twin")
    drain_timeout_s: float = Field(default=3, ge=0, description="time to flush the outbox on stop")
