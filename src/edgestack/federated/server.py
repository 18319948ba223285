"""The aggregator side: Flower's own strategies run by a Flower `ServerApp`, with the history
of each round kept next to the aggregated model.

Before the first round every client says which label names and which `InputSpec` its rows
have; the run's classes are the sorted union of the names, and a client whose spec (or row
width) is not the run's sits the run out, which the log says."""

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from logging import INFO, WARNING
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    FedProx,
    Strategy,
)
from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords, sample_nodes
from flwr.supercore.run import Run

from edgestack.bundle import InputSpec
from edgestack.federated import _net
from edgestack.federated.config import FederatedConfig

__all__ = [
    "PROGRESS_PATH",
    "RESULT_PATH",
    "FederatedResult",
    "RoundRecord",
    "federate",
    "make_strategy",
    "server_app",
]

RESULT_PATH = "result-path"
"""The run-config key naming where the `ServerApp` writes its `FederatedResult`."""

PROGRESS_PATH = "progress-path"
"""The run-config key naming a file the `ServerApp` appends one JSON line to as each round
ends: its `RoundRecord`'s fields."""

server_app = ServerApp()

# Names saved beside the weights, which are named "<layer>.<array>".
_HISTORY, _LABELS, _SPEC = "history", "labels", "spec"


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
    """The aggregated model's weights, named as the net names them, one record a round, the
    class names its outputs stand for, in order, and the spec its input rows come from."""

    state: _net.State
    history: list[RoundRecord]
    labels: list[str] = field(default_factory=list)
    spec: InputSpec | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class indices the aggregated model gives rows `x`."""
        from edgestack.learning.zoo import _torch

        return _torch.forward(_net.from_state(self.state), x).argmax(axis=1)

    def save(self, path: Path) -> Path:
        """Write the result where `load` reads it back."""
        # Typed loosely: numpy's stub reads any keyword as its `allow_pickle` flag.
        history = json.dumps([vars(record) for record in self.history])
        arrays: dict[str, Any] = {
            **self.state,
            _HISTORY: np.array(history),
            _LABELS: np.array(self.labels, dtype=str),
            _SPEC: np.array(self.spec.model_dump_json() if self.spec is not None else ""),
        }
        np.savez(path, **arrays)
        return path

    @classmethod
    def load(cls, path: Path) -> "FederatedResult":
        """The result `save` wrote to `path`."""
        with np.load(path) as saved:
            state = _net.State(
                (k, saved[k]) for k in saved.files if k not in (_HISTORY, _LABELS, _SPEC)
            )
            history = [RoundRecord(**r) for r in json.loads(str(saved[_HISTORY]))]
            spec = str(saved[_SPEC])
            return cls(
                state,
                history,
                saved[_LABELS].tolist(),
                InputSpec.model_validate_json(spec) if spec else None,
            )


def make_strategy(config: FederatedConfig, progress: "_Progress | None" = None) -> Strategy:
    """Flower's FedAvg or FedProx for `config`, inside Flower's server-side DP wrapper when
    `config.dp_clip` is set. Every connected client is asked each round, and each answer's
    metrics carry how many took part (and reach `progress`). Clients score the model they
    receive before training on it, so rounds need no separate evaluation messages."""
    aggregate = progress.aggregate if progress is not None else _with_participants
    strategy: Strategy
    if config.strategy == "fedprox":
        strategy = FedProx(
            fraction_evaluate=0.0,
            min_train_nodes=config.min_clients,
            min_available_nodes=config.min_clients,
            train_metrics_aggr_fn=aggregate,
            proximal_mu=config.proximal_mu,
        )
    else:
        strategy = FedAvg(
            fraction_evaluate=0.0,
            min_train_nodes=config.min_clients,
            min_available_nodes=config.min_clients,
            train_metrics_aggr_fn=aggregate,
        )
    if config.dp_clip is not None:
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy,
            noise_multiplier=config.dp_noise,
            clipping_norm=config.dp_clip,
            num_sampled_clients=config.min_clients,
        )
    return strategy


def federate(grid: Grid, config: FederatedConfig, progress: Path | None = None) -> FederatedResult:
    """Run `config.rounds` rounds over the clients `grid` reaches whose rows fit the run,
    after agreeing on the classes (and pooling their columns' scale when `config.scale`); a
    round that hears from no one keeps the model as it was. With `progress`, each round's
    record is appended to that file as a JSON line when the round ends."""
    members = _Members(grid, config)
    start = members.start()
    initial = _net.build(
        start.width, len(start.classes), config.hidden, seed=config.seed, scaling=start.scaling
    )
    settings = ConfigRecord(
        {
            "local_epochs": config.local_epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "seed": config.seed,
            "classes": start.classes,
        }
    )
    rounds = _Progress(progress)
    result = make_strategy(config, rounds).start(
        grid=members,
        initial_arrays=_net.to_record(initial),
        num_rounds=config.rounds,
        timeout=config.round_timeout,
        train_config=settings,
        evaluate_fn=rounds.ended,
    )
    state = _net.from_record(result.arrays) if len(result.arrays) else initial
    return FederatedResult(state, rounds.history, start.classes, start.spec)


@dataclass(frozen=True)
class _Start:
    """What the clients connected at the start agreed on."""

    classes: list[str]
    spec: InputSpec | None
    width: int
    scaling: _net.Scaling | None


@dataclass(frozen=True)
class _Answer:
    """A client's reply to the query: its label names, spec (as JSON), and column sums."""

    labels: list[str]
    spec: str
    moments: _net.Moments


class _Members(Grid):
    """The clients of `grid` whose rows fit the run: those with the run's spec and width. The
    run's spec is the one most of the clients connected at the start hold (`config.width`,
    else their most common width, fixes the width); a client that connects later is asked
    before its first round and left out if it does not fit, or does not answer."""

    def __init__(self, grid: Grid, config: FederatedConfig) -> None:
        self._grid = grid
        self._config = config
        self._asked: set[int] = set()
        self._members: set[int] = set()
        self._spec: str | None = None
        self._width = config.width

    def start(self) -> _Start:
        """Wait for `min_clients`, ask those connected, and settle the run's spec, width,
        classes and scaling from the answers that fit."""
        _, connected = sample_nodes(self._grid, self._config.min_clients, self._config.min_clients)
        answers = self._ask(connected)
        if not answers:
            raise RuntimeError("no client told its labels and spec within a round's timeout")
        self._spec = Counter(a.spec for a in answers.values()).most_common(1)[0][0]
        if self._width is None:
            widths = Counter(len(a.moments[1]) for a in answers.values() if a.spec == self._spec)
            self._width = widths.most_common(1)[0][0]
        fits = self._admit(answers)
        if len(fits) < self._config.min_clients:
            raise RuntimeError(
                f"{len(fits)} of the {len(answers)} clients that answered fit the run "
                f"(the log says why the others do not); min_clients is {self._config.min_clients}"
            )
        classes = self._config.classes or sorted({name for a in fits for name in a.labels})
        if len(classes) < 2:
            raise RuntimeError(f"the clients' rows have labels {classes}: nothing to tell apart")
        scaling = _net.pooled_scaling([a.moments for a in fits]) if self._config.scale else None
        spec = InputSpec.model_validate_json(self._spec) if self._spec else None
        return _Start(classes, spec, self._width, scaling)

    def get_node_ids(self) -> Iterable[int]:
        """The connected clients that fit, asking those not asked yet."""
        connected = list(self._grid.get_node_ids())
        new = [node for node in connected if node not in self._asked]
        if new and self._spec is not None:
            self._admit(self._ask(new))
        return [node for node in connected if node in self._members]

    def _ask(self, nodes: list[int]) -> dict[int, _Answer]:
        self._asked.update(nodes)
        asks = [
            Message(RecordDict(), message_type=MessageType.QUERY, dst_node_id=node)
            for node in nodes
        ]
        answers = {}
        for reply in self._grid.send_and_receive(asks, timeout=self._config.round_timeout):
            if reply.has_error():
                log(WARNING, "client %s left out: %s", reply.metadata.src_node_id, reply.error)
                continue
            metrics = reply.content.metric_records["metrics"]
            names = reply.content.config_records["names"]
            answers[reply.metadata.src_node_id] = _Answer(
                labels=[str(label) for label in _strings(names["labels"])],
                spec=str(names["spec"]),
                moments=(
                    int(_scalar(metrics["num-examples"]) or 0),
                    np.asarray(metrics["sum"], dtype=np.float64),
                    np.asarray(metrics["sum-squares"], dtype=np.float64),
                ),
            )
        for node in set(nodes) - answers.keys():
            log(WARNING, "client %s left out: it did not answer within a round's timeout", node)
        return answers

    def _admit(self, answers: dict[int, _Answer]) -> list[_Answer]:
        fits = []
        for node, answer in answers.items():
            width = len(answer.moments[1])
            if answer.spec != self._spec:
                log(WARNING, "client %s left out: its rows come from another input spec", node)
            elif width != self._width:
                log(
                    WARNING,
                    "client %s left out: rows of %d columns, not %s",
                    node,
                    width,
                    self._width,
                )
            else:
                log(INFO, "client %s takes part with labels %s", node, answer.labels)
                self._members.add(node)
                fits.append(answer)
        return fits

    def set_run(self, run: Run) -> None:
        """Flower's: the run the grid works for."""
        self._grid.set_run(run)

    @property
    def run(self) -> Run:
        """Flower's: the run the grid works for."""
        return self._grid.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """Flower's: a message to a client."""
        return self._grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Flower's: send messages, their ids back."""
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Flower's: the replies to those messages that came."""
        return self._grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Flower's: send messages, and the replies that came within `timeout`."""
        return self._grid.send_and_receive(messages, timeout=timeout)


class _Progress:
    """Each round's record as it ends: the strategy hands over the aggregated metrics of the
    answers, then calls `ended` once the round's model is aggregated."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.history: list[RoundRecord] = []
        self._metrics = MetricRecord()

    def aggregate(self, replies: list[RecordDict], weighted_by: str) -> MetricRecord:
        """Flower's train metrics aggregation, the metrics kept for the round's record."""
        self._metrics = _with_participants(replies, weighted_by)
        return self._metrics

    def ended(self, server_round: int, arrays: object) -> MetricRecord | None:
        """Flower's evaluation hook, called after each round (and with 0 before the first)."""
        if server_round == 0:
            return None
        metrics, self._metrics = self._metrics, MetricRecord()
        record = RoundRecord(
            round=server_round,
            participants=int(_scalar(metrics.get("participants")) or 0),
            loss=_scalar(metrics.get("loss")),
            accuracy=_scalar(metrics.get("accuracy")),
        )
        self.history.append(record)
        if self.path is not None:
            with self.path.open("a") as out:
                out.write(json.dumps(vars(record)) + "\n")
        return None


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    config = FederatedConfig.from_run_config(dict(context.run_config))
    progress = context.run_config.get(PROGRESS_PATH)
    result = federate(grid, config, Path(str(progress)) if progress else None)
    result.save(Path(str(context.run_config[RESULT_PATH])))


def _with_participants(replies: list[RecordDict], weighted_by: str) -> MetricRecord:
    metrics = aggregate_metricrecords(replies, weighted_by)
    metrics["participants"] = len(replies)
    return metrics


def _strings(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _scalar(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
