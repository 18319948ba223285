"""The device side: a Flower `ClientApp` that trains on windows the device keeps and answers
with the model's parameters and counts, never a row.

Before the first round the aggregator asks each client for its label names (the set), the
`InputSpec` its rows were computed by, and the sums of its columns, to agree on the classes
and to scale rows alike on every device; then each round sends the model and the run's class
names to train, and a client trains on its rows whose label is one of them.

A SuperNode started with `--node-config 'data-path="..."'` points the app at the device's
windows, an `.npz` written by `save_local_windows`; they are read on the device, in the app's
process, for each message."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import flwr.compat.common.recorddict_compat as compat
import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import (
    Code,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

from edgestack.bundle import InputSpec
from edgestack.federated import _net

__all__ = [
    "DATA_PATH",
    "LocalWindows",
    "client_app",
    "load_local_windows",
    "save_local_windows",
]

DATA_PATH = "data-path"
"""The node-config key naming the device's windows file."""


def _secure_when_asked(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    # SecAgg+'s four stages come as train messages carrying its config record; a run without
    # it sends plain train messages, which go straight to the app.
    if RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, context, call_next)
    return call_next(msg, context)


client_app = ClientApp(mods=[_secure_when_asked])

# Where Flower's legacy fit instructions (SecAgg+'s form) carry the model.
_SECURE_ARRAYS = "fitins.parameters"


class LocalWindows(NamedTuple):
    """A device's rows, the label name of each, and the spec that computed them (if known)."""

    x: np.ndarray
    labels: np.ndarray
    spec: InputSpec | None


def save_local_windows(
    path: Path, x: np.ndarray, labels: Sequence[str], spec: InputSpec | None = None
) -> Path:
    """Write rows `x`, the label name of each and the `spec` they were computed by where a
    client of this device reads them."""
    names = np.asarray(labels)
    if names.shape != (len(x),) or (len(names) and names.dtype.kind != "U"):
        raise ValueError(f"labels: {names.dtype} {names.shape}; give one label name (str) a row")
    np.savez(
        path,
        x=np.asarray(x, dtype=np.float32),
        labels=names.astype(str),
        spec=np.array(spec.model_dump_json() if spec is not None else ""),
    )
    return path


def load_local_windows(context: Context) -> LocalWindows:
    """The windows this node holds, from the file its node config names."""
    path = context.node_config.get(DATA_PATH)
    if not isinstance(path, str):
        raise ValueError(f"node config: no {DATA_PATH}; start the SuperNode with a windows file")
    with np.load(path) as held:
        spec = str(held["spec"])
        return LocalWindows(
            held["x"], held["labels"], InputSpec.model_validate_json(spec) if spec else None
        )


def _classes(windows: LocalWindows, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The rows labelled by one of `names` (the run's classes) and each one's index there: a
    label the run does not know has no class to learn, so its rows sit the run out."""
    index = {name: i for i, name in enumerate(names)}
    known = np.array([label in index for label in windows.labels], dtype=bool)
    if not known.any():
        raise ValueError(f"labels: none of this device's labels is a class of the run ({names})")
    y = np.array([index[label] for label in windows.labels[known]], dtype=np.int64)
    return windows.x[known], y


@client_app.train()
def _train(msg: Message, context: Context) -> Message:
    if _SECURE_ARRAYS in msg.content.array_records:
        return _train_secure(msg, context)
    config = msg.content.config_records["config"]
    given = _net.from_record(msg.content.array_records["arrays"])
    state, examples, loss, accuracy = _fit(given, config, context)
    return _reply(msg, examples, loss, accuracy, _net.to_record(state))


def _train_secure(msg: Message, context: Context) -> Message:
    """A round under SecAgg+: the model comes as Flower's legacy fit instructions, its arrays
    in the order `names` gives, and the reply is the update (trained minus given), which the
    SecAgg+ mod masks before it leaves: the aggregator adds the masked updates up and only
    their weighted mean comes out."""
    fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
    names = json.loads(str(fitins.config["names"]))
    given = _net.State(zip(names, parameters_to_ndarrays(fitins.parameters), strict=True))
    state, examples, loss, accuracy = _fit(given, fitins.config, context)
    update = [state[name] - given[name] for name in names]
    fitres = FitRes(
        status=Status(code=Code.OK, message=""),
        parameters=ndarrays_to_parameters(update),
        num_examples=examples,
        metrics={"loss": loss, "accuracy": accuracy},
    )
    return Message(content=compat.fitres_to_recorddict(fitres, keep_input=False), reply_to=msg)


def _fit(
    given: _net.State, config: Mapping[str, object], context: Context
) -> tuple[_net.State, int, float, float]:
    """The model `given` trained on this device's rows of the run's classes, how many rows
    those are, and the loss and accuracy of `given` on them."""
    x, y = _classes(load_local_windows(context), _names(config))
    # The model as it came, scored on these windows before training on them: the federated
    # evaluation of the last aggregate, without a second message and app process per round.
    loss, accuracy = _net.evaluate(given, x, y)
    state = _net.train(
        given,
        x,
        y,
        epochs=int(_setting(config, "local_epochs")),
        batch_size=int(_setting(config, "batch_size")),
        learning_rate=_setting(config, "learning_rate"),
        # FedProx sends its weight under this key; FedAvg sends none.
        proximal_mu=_setting(config, "proximal-mu", 0.0),
        seed=int(_setting(config, "seed") + _setting(config, "server-round")),
    )
    return state, len(y), loss, accuracy


@client_app.query()
def _moments(msg: Message, context: Context) -> Message:
    windows = load_local_windows(context)
    rows, total, squares = _net.moments(windows.x)
    # Sums over all the device's rows: the scale of its windows, not the windows; the set of
    # its label names and its spec, not which row has which label.
    metrics = MetricRecord(
        {"num-examples": rows, "sum": total.tolist(), "sum-squares": squares.tolist()}
    )
    names = ConfigRecord(
        {
            "labels": sorted(set(windows.labels.tolist())),
            "spec": windows.spec.model_dump_json() if windows.spec is not None else "",
        }
    )
    return Message(content=RecordDict({"metrics": metrics, "names": names}), reply_to=msg)


def _reply(
    msg: Message, examples: int, loss: float, accuracy: float, arrays: ArrayRecord
) -> Message:
    # The weights, a count and two scalars: the aggregator weighs by `num-examples`, and
    # nothing in the reply lets anyone read back a row.
    metrics = MetricRecord({"num-examples": examples, "loss": loss, "accuracy": accuracy})
    return Message(content=RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


def _names(config: Mapping[str, object]) -> list[str]:
    names = json.loads(str(config.get("classes", "null")))
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"train config: classes is {names!r}; the server sends the names")
    return names


def _setting(config: Mapping[str, object], key: str, default: float | None = None) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"train config: {key} is {value!r}; the server sends it as a number")
    return float(value)
