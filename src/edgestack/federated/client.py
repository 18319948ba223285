"""The device side: a Flower `ClientApp` that trains on windows the device keeps and answers
with the model's parameters and counts, never a row.

Before the first round the aggregator may ask each client for the sums of its columns, to
scale rows alike on every device; then each round sends the model to train.

A SuperNode started with `--node-config 'data-path="..."'` points the app at the device's
windows, an `.npz` written by `save_local_windows`; they are read on the device, in the app's
process, for each message."""

from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from edgestack.federated import _net

__all__ = ["DATA_PATH", "client_app", "load_local_windows", "save_local_windows"]

DATA_PATH = "data-path"
"""The node-config key naming the device's windows file."""

client_app = ClientApp()


def save_local_windows(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """Write rows `x` and their classes `y` where a client of this device reads them."""
    np.savez(path, x=np.asarray(x, dtype=np.float32), y=np.asarray(y, dtype=np.int64))
    return path


def load_local_windows(context: Context) -> tuple[np.ndarray, np.ndarray]:
    """The rows and classes this node holds, from the file its node config names."""
    path = context.node_config.get(DATA_PATH)
    if not isinstance(path, str):
        raise ValueError(f"node config: no {DATA_PATH}; start the SuperNode with a windows file")
    with np.load(path) as held:
        return held["x"], held["y"]


@client_app.train()
def _train(msg: Message, context: Context) -> Message:
    x, y = load_local_windows(context)
    config = msg.content.config_records["config"]
    given = _net.from_record(msg.content.array_records["arrays"])
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
    return _reply(msg, len(y), loss, accuracy, _net.to_record(state))


@client_app.query()
def _moments(msg: Message, context: Context) -> Message:
    x, _ = load_local_windows(context)
    rows, total, squares = _net.moments(x)
    # Sums over all the device's rows: the scale of its windows, not the windows.
    metrics = MetricRecord(
        {"num-examples": rows, "sum": total.tolist(), "sum-squares": squares.tolist()}
    )
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)


def _reply(
    msg: Message, examples: int, loss: float, accuracy: float, arrays: ArrayRecord
) -> Message:
    # The weights, a count and two scalars: the aggregator weighs by `num-examples`, and
    # nothing in the reply lets anyone read back a row.
    metrics = MetricRecord({"num-examples": examples, "loss": loss, "accuracy": accuracy})
    return Message(content=RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


def _setting(config: ConfigRecord, key: str, default: float | None = None) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"train config: {key} is {value!r}; the server sends it as a number")
    return float(value)
