"""What a federated training run is asked to do, checked before any process starts."""

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["FederatedConfig"]


class FederatedConfig(BaseModel):
    """One federated run: the model, the rounds, the strategy and how long a round waits.

    A round asks every connected client to train; it ends when all have answered or after
    `round_timeout` seconds, and aggregates the answers it has, so a device that drops out
    or straggles costs one timeout, not the run. Training starts once `min_clients` are
    connected. `dp_clip` (with `dp_noise`) wraps the strategy in Flower's central
    differential privacy: each update clipped to that L2 norm, Gaussian noise of
    `dp_noise * dp_clip / min_clients` added to the aggregate. With `scale`, the clients
    first send the sums of their columns (never a row), and the model scales rows by the
    pooled mean and deviation.

        FederatedConfig(width=12, classes=3, rounds=5, strategy="fedprox", min_clients=3)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(ge=1, description="feature columns of each row a client holds")
    classes: int = Field(ge=2, description="classes the model tells apart")
    hidden: int = Field(default=32, ge=1, description="units of the MLP's hidden layer")
    rounds: int = Field(default=3, ge=1, le=1000)
    strategy: Literal["fedavg", "fedprox"] = "fedavg"
    proximal_mu: float = Field(default=0.1, ge=0, description="FedProx's proximal weight")
    min_clients: int = Field(default=2, ge=1)
    round_timeout: float = Field(default=60.0, gt=0, description="seconds a round waits")
    local_epochs: int = Field(default=5, ge=1, le=1000)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=0.01, gt=0, le=1)
    dp_clip: float | None = Field(default=None, gt=0, description="L2 norm updates are clipped to")
    dp_noise: float = Field(default=0.0, ge=0, description="noise multiplier, with dp_clip")
    scale: bool = Field(
        default=True,
        description="scale columns by their mean and deviation over every client's rows",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _noise_needs_clipping(self) -> Self:
        if self.dp_noise > 0 and self.dp_clip is None:
            raise ValueError("dp_noise: noise is scaled by the clipping norm; set dp_clip too")
        return self

    def to_run_config(self) -> dict[str, int | float | str]:
        """Flat values for Flower's run config (TOML scalars; an unset `dp_clip` left out)."""
        return self.model_dump(exclude_none=True)

    @classmethod
    def from_run_config(cls, values: dict[str, object]) -> "FederatedConfig":
        """The config a `to_run_config` mapping came from; Flower's own keys are ignored."""
        return cls.model_validate({k: v for k, v in values.items() if k in cls.model_fields})
