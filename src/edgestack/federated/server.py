"""The aggregator side: Flower's own strategies run by a Flower `ServerApp`, with the history
of each round kept next to the aggregated model.

Before the first round every client says which label names and which `InputSpec` its rows
have; the run's classes are the sorted union of the names, and a client whose spec (or row
width) is not the run's sits the run out, which the log says."""

import json
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from logging import INFO, WARNING
from pathlib import Path
from typing import Any, cast

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.common import (
    FitRes,
    Parameters,
    Scalar,
    log,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server import LegacyContext, ServerConfig
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
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

    def to_onnx(self) -> bytes:
        """The aggregated model as the zoo exports its nets: input `features`, float32 rows
        `[batch, width]` as the clients hold them (its scaling, and the 1D-CNN's fold, inside),
        output `probabilities`, and `labels` in its metadata (as a bundle's model has them)."""
        from torch import nn

        from edgestack.learning._onnx import with_labels
        from edgestack.learning.zoo import _torch

        module = nn.Sequential(_net.from_state(self.state), nn.Softmax(dim=1))
        width = int(self.state["0.mean"].shape[0])
        graph = _torch.export(module, width, "probabilities").SerializeToString()
        return with_labels(graph, self.labels) if self.labels else graph

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
    if config.model == "cnn1d":
        initial = _net.build_cnn1d(
            _window(start.spec, start.width),
            len(start.classes),
            config.filters,
            seed=config.seed,
            scaling=start.scaling,
        )
    else:
        initial = _net.build(
            start.width, len(start.classes), config.hidden, seed=config.seed, scaling=start.scaling
        )
    settings = ConfigRecord(
        {
            "local_epochs": config.local_epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "seed": config.seed,
            # JSON: Flower's legacy instructions (SecAgg+'s form) carry scalars only.
            "classes": json.dumps(start.classes),
        }
    )
    rounds = _Progress(progress)
    if config.secagg:
        state = _secure_rounds(members, config, initial, settings, rounds, start.rows)
        return FederatedResult(state, rounds.history, start.classes, start.spec)
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


def _window(spec: InputSpec | None, width: int) -> tuple[int, int]:
    """The (channels, samples) of the raw windows the clients' rows flatten, channel by
    channel, from their spec; a `RuntimeError` when that does not fit their width."""
    if spec is None:
        raise RuntimeError(
            "model cnn1d: the clients' windows have no input spec to tell their shape"
        )
    shape = (len(spec.sensors), spec.window)
    if shape[0] * shape[1] != width:
        raise RuntimeError(
            f"model cnn1d: rows of {width} columns are not raw windows of {shape[1]} samples "
            f"on {shape[0]} channels; train the mlp on feature rows"
        )
    return shape


def _secure_rounds(
    grid: Grid,
    config: FederatedConfig,
    initial: _net.State,
    settings: ConfigRecord,
    progress: "_Progress",
    rows: int,
) -> _net.State:
    """`config.rounds` rounds of FedAvg under Flower's SecAgg+ (its legacy workflow, where
    SecAgg+ lives): each client masks its weighted update, the masks cancel only in the sum
    of the updates, so the aggregator sees their mean and no one client's. Updates are
    clipped to +-8 per weight and quantised in 2**22 steps over that range (Flower's
    defaults), and weighted by rows up to `rows`, the most any client holds."""
    strategy = _SecureFedAvg(config, initial, settings, progress)
    context = LegacyContext(
        Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={}),
        config=ServerConfig(num_rounds=config.rounds, round_timeout=config.round_timeout),
        strategy=strategy,
    )
    secure = SecAggPlusWorkflow(
        # About half the clients hold a share of each one's keys (an odd number, Flower's
        # rounding), two thirds of those shares rebuild a dropped client's masks.
        num_shares=0.5,
        reconstruction_threshold=2 / 3,
        max_weight=float(max(rows, 1)),
        timeout=config.round_timeout,
    )
    DefaultWorkflow(fit_workflow=secure)(grid, context)
    return strategy.state


class _SecureFedAvg(LegacyFedAvg):
    """Flower's legacy FedAvg for SecAgg+: clients send updates, so each round adds the mean
    update SecAgg+ reveals to the model, kept here; rounds end through `progress` as the
    Message-API strategies' do."""

    def __init__(
        self,
        config: FederatedConfig,
        initial: _net.State,
        settings: ConfigRecord,
        progress: "_Progress",
    ) -> None:
        # The run's settings are scalars (the classes as JSON) by construction.
        instructions = {**cast(dict[str, Scalar], settings), "names": json.dumps(list(initial))}
        super().__init__(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=config.min_clients,
            min_available_clients=config.min_clients,
            initial_parameters=ndarrays_to_parameters(list(initial.values())),
            on_fit_config_fn=lambda server_round: {**instructions, "server-round": server_round},
            fit_metrics_aggregation_fn=progress.tally,
        )
        self.state = initial
        self._progress = progress

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """The model moved by the mean update: SecAgg+ hands every result the same unmasked
        mean, so FedAvg's weighted mean of them is that mean."""
        mean, metrics = super().aggregate_fit(server_round, results, failures)
        if mean is None:
            return None, metrics
        update = parameters_to_ndarrays(mean)
        self.state = _net.State(
            (name, (value + step).astype(value.dtype))
            for (name, value), step in zip(self.state.items(), update, strict=True)
        )
        return ndarrays_to_parameters(list(self.state.values())), metrics

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        """Flower's evaluation hook, called as each round ends: the round's record."""
        self._progress.ended(server_round, parameters)
        return None


@dataclass(frozen=True)
class _Start:
    """What the clients connected at the start agreed on."""

    classes: list[str]
    spec: InputSpec | None
    width: int
    scaling: _net.Scaling | None
    rows: int


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
    before its first round and left out if it does not fit; one that does not answer is
    asked again the next time."""

    def __init__(self, grid: Grid, config: FederatedConfig) -> None:
        self._grid = grid
        self._config = config
        self._answered: set[int] = set()
        self._members: set[int] = set()
        self._spec: str | None = None
        self._width = config.width
        self._lock = threading.Lock()

    def start(self) -> _Start:
        """Wait for `min_clients`, ask those connected, and settle the run's spec, width,
        classes and scaling from the answers that fit."""
        answers: dict[int, _Answer] = {}
        # An app process starting on a busy device may miss a timeout: those that did not
        # answer are asked again until `min_clients` have, as Flower waits for connections.
        while len(answers) < self._config.min_clients:
            # More connected than have answered: someone to ask.
            wanted = max(self._config.min_clients, len(self._answered) + 1)
            _, connected = sample_nodes(self._grid, wanted, 1)
            answers.update(self._ask([node for node in connected if node not in self._answered]))
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
        spec = InputSpec.model_validate_json(self._spec) if self._spec else None
        # The 1D-CNN scales each channel of a window as a whole, as the zoo's does.
        channels = len(spec.sensors) if spec is not None and self._config.model == "cnn1d" else None
        moments = [a.moments for a in fits]
        scaling = _net.pooled_scaling(moments, channels) if self._config.scale else None
        rows = max(a.moments[0] for a in fits)
        return _Start(classes, spec, self._width, scaling, rows)

    def get_node_ids(self) -> Iterable[int]:
        """The connected clients that fit, asking those not asked yet."""
        # Flower's legacy workflow (SecAgg+'s) asks from a thread of its own too.
        with self._lock:
            connected = list(self._grid.get_node_ids())
            new = [node for node in connected if node not in self._answered]
            if new and self._spec is not None:
                self._admit(self._ask(new))
            return [node for node in connected if node in self._members]

    def _ask(self, nodes: list[int]) -> dict[int, _Answer]:
        asks = [
            Message(RecordDict(), message_type=MessageType.QUERY, dst_node_id=node)
            for node in nodes
        ]
        answers = {}
        for reply in self._grid.send_and_receive(asks, timeout=self._config.round_timeout):
            self._answered.add(reply.metadata.src_node_id)
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
            log(WARNING, "client %s did not answer within a round's timeout: asked again", node)
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

    def tally(self, fits: list[tuple[int, dict[str, Scalar]]]) -> dict[str, Scalar]:
        """Flower's legacy fit metrics aggregation (SecAgg+'s rounds), kept likewise."""
        rows = sum(examples for examples, _ in fits)
        metrics: dict[str, Scalar] = {"participants": len(fits)}
        for key in ("loss", "accuracy"):
            values = [(n, m[key]) for n, m in fits if isinstance(m.get(key), int | float)]
            if values and rows:
                metrics[key] = sum(n * float(v) for n, v in values) / rows
        self._metrics = MetricRecord(metrics)  # type: ignore[arg-type]
        return metrics

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
