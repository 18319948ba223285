"""The aggregator side: Flower's own strategies run by a Flower `ServerApp`, with the history
of each round kept next to the aggregated model."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    FedProx,
    Strategy,
)
from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords, sample_nodes

from edgestack.federated import _net
from edgestack.federated.config import FederatedConfig

__all__ = [
    "RESULT_PATH",
    "FederatedResult",
    "RoundRecord",
    "federate",
    "make_strategy",
    "server_app",
]

RESULT_PATH = "result-path"
"""The run-config key naming where the `ServerApp` writes its `FederatedResult`."""

server_app = ServerApp()

# The name the history is saved under beside the weights, which are named "<layer>.<array>".
_HISTORY = "history"


@dataclass(frozen=True)
class RoundRecord:
    """One round as the aggregator saw it: how many clients answered in time, and the loss and
    accuracy of the model the round started from on their windows, weighted by windows
    (`None` when no client answered). The last aggregate is scored by whoever uses it."""

    round: int
    participants: int
    loss: float | None
    accuracy: float | None


@dataclass(frozen=True)
class FederatedResult:
    """The aggregated model's weights, named as the net names them, and one record a round."""

    state: _net.State
    history: list[RoundRecord]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class indices the aggregated model gives rows `x`."""
        from edgestack.learning.zoo import _torch

        return _torch.forward(_net.from_state(self.state), x).argmax(axis=1)

    def save(self, path: Path) -> Path:
        """Write the result where `load` reads it back."""
        # Typed loosely: numpy's stub reads any keyword as its `allow_pickle` flag.
        history = json.dumps([vars(record) for record in self.history])
        arrays: dict[str, Any] = {**self.state, _HISTORY: np.array(history)}
        np.savez(path, **arrays)
        return path

    @classmethod
    def load(cls, path: Path) -> "FederatedResult":
        """The result `save` wrote to `path`."""
        with np.load(path) as saved:
            state = _net.State((k, saved[k]) for k in saved.files if k != _HISTORY)
            history = [RoundRecord(**r) for r in json.loads(str(saved[_HISTORY]))]
        return cls(state, history)


def make_strategy(config: FederatedConfig) -> Strategy:
    """Flower's FedAvg or FedProx for `config`, inside Flower's server-side DP wrapper when
    `config.dp_clip` is set. Every connected client is asked each round, and each answer's
    metrics carry how many took part. Clients score the model they receive before training on
    it, so rounds need no separate evaluation messages."""
    strategy: Strategy
    if config.strategy == "fedprox":
        strategy = FedProx(
            fraction_evaluate=0.0,
            min_train_nodes=config.min_clients,
            min_available_nodes=config.min_clients,
            train_metrics_aggr_fn=_with_participants,
            proximal_mu=config.proximal_mu,
        )
    else:
        strategy = FedAvg(
            fraction_evaluate=0.0,
            min_train_nodes=config.min_clients,
            min_available_nodes=config.min_clients,
            train_metrics_aggr_fn=_with_participants,
        )
    if config.dp_clip is not None:
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy,
            noise_multiplier=config.dp_noise,
            clipping_norm=config.dp_clip,
            num_sampled_clients=config.min_clients,
        )
    return strategy


def federate(grid: Grid, config: FederatedConfig) -> FederatedResult:
    """Run `config.rounds` rounds over the clients `grid` reaches, after pooling their
    columns' scale when `config.scale`; a round that hears from no one keeps the model as it
    was."""
    scaling = _pooled_scaling(grid, config) if config.scale else None
    initial = _net.build(
        config.width, config.classes, config.hidden, seed=config.seed, scaling=scaling
    )
    settings = ConfigRecord(
        {
            "local_epochs": config.local_epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "seed": config.seed,
        }
    )
    result = make_strategy(config).start(
        grid=grid,
        initial_arrays=_net.to_record(initial),
        num_rounds=config.rounds,
        timeout=config.round_timeout,
        train_config=settings,
    )
    history = []
    for done in range(1, config.rounds + 1):
        trained = result.train_metrics_clientapp.get(done, MetricRecord())
        history.append(
            RoundRecord(
                round=done,
                participants=int(_scalar(trained.get("participants")) or 0),
                loss=_scalar(trained.get("loss")),
                accuracy=_scalar(trained.get("accuracy")),
            )
        )
    state = _net.from_record(result.arrays) if len(result.arrays) else initial
    return FederatedResult(state, history)


def _pooled_scaling(grid: Grid, config: FederatedConfig) -> _net.Scaling | None:
    """Column means and deviations over the windows of every client connected once
    `min_clients` are, from the sums each sends (Flower's query message); `None` (no
    scaling) if none answers within a round's timeout."""
    _, connected = sample_nodes(grid, config.min_clients, config.min_clients)
    asks = [
        Message(RecordDict(), message_type=MessageType.QUERY, dst_node_id=node)
        for node in connected
    ]
    parts = []
    for reply in grid.send_and_receive(asks, timeout=config.round_timeout):
        if reply.has_error():
            continue
        metrics = reply.content.metric_records["metrics"]
        total = np.asarray(metrics["sum"], dtype=np.float64)
        if total.shape != (config.width,):
            continue  # a client of another width fails its rounds too, saying why
        squares = np.asarray(metrics["sum-squares"], dtype=np.float64)
        parts.append((int(_scalar(metrics["num-examples"]) or 0), total, squares))
    return _net.pooled_scaling(parts) if parts else None


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    config = FederatedConfig.from_run_config(dict(context.run_config))
    federate(grid, config).save(Path(str(context.run_config[RESULT_PATH])))


def _with_participants(replies: list[RecordDict], weighted_by: str) -> MetricRecord:
    metrics = aggregate_metricrecords(replies, weighted_by)
    metrics["participants"] = len(replies)
    return metrics


def _scalar(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
