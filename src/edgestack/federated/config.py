"""What a federated training run is asked to do, checked before any process starts."""

import json
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    pooled mean and deviation. `secagg` runs FedAvg under Flower's SecAgg+, so the aggregator
    sees only the mean update (not with `dp_clip`, which clips each client's update there).

    Clients hold rows labelled by name; the run's classes are `classes` in that order, or,
    left out, the sorted union of the names the clients connected at the start hold. The
    row width is `width`, or left out, that of those clients' rows.

        FederatedConfig(rounds=5, strategy="fedprox", min_clients=3)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int | None = Field(
        default=None, ge=1, description="columns of each row; null: as the clients' rows"
    )
    classes: list[str] | None = Field(
        default=None,
        min_length=2,
        description="the class names the model tells apart, in index order; null: the "
        "sorted union of the clients' label names",
    )
    model: Literal["mlp", "cnn1d"] = Field(
        default="mlp",
        description="mlp: over feature rows; cnn1d: the zoo's 1D-CNN over raw windows, whose "
        "channels and length the clients' input spec gives",
    )
    hidden: int = Field(default=32, ge=1, description="units of the MLP's hidden layer")
    filters: int = Field(default=8, ge=1, description="the 1D-CNN's first convolution's filters")
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
    secagg: bool = Field(
        default=False,
        description="secure aggregation (Flower's SecAgg+): the aggregator sees only the "
        "mean of the updates, never one client's",
    )
    scale: bool = Field(
        default=True,
        description="scale columns by their mean and deviation over every client's rows",
    )
    seed: int = 0

    @field_validator("classes", mode="before")
    @classmethod
    def _class_names(cls, value: object) -> object:
        # A count stands for the names "0".."n-1" (callers that labelled rows by index);
        # Flower's run config carries the list as JSON, its values being scalars.
        if isinstance(value, int) and not isinstance(value, bool):
            return [str(index) for index in range(value)]
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("classes")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("classes: each name once; a name is one class")
        return value

    @model_validator(mode="after")
    def _noise_needs_clipping(self) -> Self:
        if self.dp_noise > 0 and self.dp_clip is None:
            raise ValueError("dp_noise: noise is scaled by the clipping norm; set dp_clip too")
        if self.secagg and self.dp_clip is not None:
            raise ValueError(
                "secagg: the aggregator clips each client's update for dp_clip, which SecAgg+ "
                "hides from it; choose one of secagg and dp_clip"
            )
        if self.secagg and self.strategy != "fedavg":
            raise ValueError("secagg: SecAgg+ runs FedAvg; leave strategy at fedavg")
        if self.secagg and self.min_clients < 2:
            raise ValueError(
                "secagg: a sum hides an update only among two or more; min_clients >= 2"
            )
        return self

    def to_run_config(self) -> dict[str, int | float | str]:
        """Flat values for Flower's run config (TOML scalars, `classes` as JSON; unset
        values left out)."""
        values = self.model_dump(exclude_none=True)
        if self.classes is not None:
            values["classes"] = json.dumps(self.classes)
        return values

    @classmethod
    def from_run_config(cls, values: dict[str, object]) -> "FederatedConfig":
        """The config a `to_run_config` mapping came from; Flower's own keys are ignored."""
        return cls.model_validate({k: v for k, v in values.items() if k in cls.model_fields})
