"""The nets a federation trains: a small MLP over feature rows, or the zoo's 1D-CNN over raw
windows (rows of the window's samples, channel by channel), built and trained with the zoo's
PyTorch pieces. torch is imported by the functions that need it, as in the zoo: the server
only moves arrays and the package imports in a fraction of torch's start-up."""

from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import Array, ArrayRecord

from edgestack.learning.zoo._rows import as_rows

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "Moments",
    "Scaling",
    "State",
    "build",
    "build_cnn1d",
    "evaluate",
    "from_record",
    "from_state",
    "moments",
    "pooled_scaling",
    "to_record",
    "train",
]

State = OrderedDict[str, np.ndarray]
Scaling = tuple[np.ndarray, np.ndarray]
Moments = tuple[int, np.ndarray, np.ndarray]


def moments(x: np.ndarray) -> Moments:
    """Rows, and the sum and sum of squares of each column of rows `x`: what a device tells
    the aggregator about its windows' scale, a row never."""
    rows = as_rows(x).astype(np.float64)
    return len(rows), rows.sum(axis=0), (rows**2).sum(axis=0)


def pooled_scaling(parts: list[Moments], channels: int | None = None) -> Scaling:
    """Mean and deviation of each column over every device's rows, from their `moments`; with
    `channels`, of each channel (its adjacent columns together, as the zoo's 1D-CNN scales a
    window), repeated over its columns. A column that does not vary keeps a deviation of 1."""
    rows = sum(n for n, _, _ in parts)
    total = np.sum([total for _, total, _ in parts], axis=0)
    squares = np.sum([squares for _, _, squares in parts], axis=0)
    width = len(total)
    groups = channels or width
    per = width // groups
    count = rows * per
    mean = total.reshape(groups, per).sum(axis=1) / count
    variance = squares.reshape(groups, per).sum(axis=1) / count - mean**2
    std = np.sqrt(np.maximum(variance, 0.0))
    std[std < 1e-6] = 1.0
    return np.repeat(mean, per), np.repeat(std, per)


def build(
    width: int, classes: int, hidden: int, *, seed: int, scaling: Scaling | None = None
) -> State:
    """Fresh weights of an MLP taking rows of `width` columns to `classes` logits.

    Its first layer scales each column by `scaling` (mean, deviation; the identity without
    it), fixed for the whole run: a device never refits it, as each would to its own skewed
    share of the classes, and averaging those mixes units."""
    from edgestack.learning.zoo import _torch

    with _torch.seeded(seed):
        module = _mlp(width, classes, hidden)
    return _scaled(_to_numpy(module), scaling)


def build_cnn1d(
    shape: tuple[int, int], classes: int, filters: int, *, seed: int, scaling: Scaling | None
) -> State:
    """Fresh weights of the zoo's 1D-CNN over rows of `channels * size` raw samples (`shape`),
    channel by channel, to `classes` logits; scaled by `scaling` as `build`'s MLP is."""
    from edgestack.learning.zoo import _torch

    with _torch.seeded(seed):
        module = _cnn1d(shape, classes, filters)
    return _scaled(_to_numpy(module), scaling)


# The first convolution of the zoo's 1D-CNN, after its scaling and fold: only it has this.
_CNN_FIRST = "2.weight"


def from_state(state: State) -> "nn.Module":
    """The net holding `state`, which of the two and its sizes read from the arrays' shapes."""
    import torch

    width = state["0.mean"].shape[0]
    if _CNN_FIRST in state:
        filters, channels, _ = state[_CNN_FIRST].shape
        module = _cnn1d((channels, width // channels), _classes(state), filters)
    else:
        module = _mlp(width, _classes(state), state["1.weight"].shape[0])
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return module


def _mlp(width: int, classes: int, hidden: int) -> "nn.Module":
    from torch import nn

    from edgestack.learning.zoo import _torch

    return nn.Sequential(
        _torch.Standardise(np.zeros(width), np.ones(width)),
        nn.Linear(width, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


def _cnn1d(shape: tuple[int, int], classes: int, filters: int) -> "nn.Module":
    from edgestack.learning.zoo import _torch

    # The zoo fits its scaling to rows it is given; a federation sets it from every device's
    # sums instead, so a row of zeros stands in.
    return _torch.cnn1d(np.zeros((1, shape[0] * shape[1])), classes, shape, filters)


def _scaled(state: State, scaling: Scaling | None) -> State:
    if scaling is not None:
        state["0.mean"], state["0.std"] = (a.astype(np.float32) for a in scaling)
    return state


def _classes(state: State) -> int:
    """Outputs of the net holding `state`: the rows of its last weight."""
    return int(next(v for k, v in reversed(state.items()) if k.endswith("weight")).shape[0])


def train(
    state: State,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    proximal_mu: float,
    seed: int,
) -> State:
    """`state` trained further on rows `x` and classes `y`; with `proximal_mu` > 0 the loss
    holds the weights near `state` (FedProx's proximal term), so a device whose windows cover
    few classes does not pull the model far from what the others learnt."""
    from torch.nn.functional import cross_entropy

    from edgestack.learning.zoo import _torch

    rows, classes = _checked(state, x, y)
    module = from_state(state)
    anchor = [p.detach().clone() for p in module.parameters()]

    def loss(output: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
        fit = cross_entropy(output, target)
        if proximal_mu == 0.0:
            return fit
        drift = sum(((p - a) ** 2).sum() for p, a in zip(module.parameters(), anchor, strict=True))
        return fit + proximal_mu / 2 * drift

    _torch.train(
        module,
        rows,
        classes,
        loss,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    return _to_numpy(module)


def evaluate(state: State, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of the net holding `state` on rows `x`, classes `y`."""
    import torch
    from torch.nn.functional import cross_entropy

    from edgestack.learning.zoo import _torch

    rows, classes = _checked(state, x, y)
    logits = _torch.forward(from_state(state), rows)
    loss = float(cross_entropy(torch.from_numpy(logits), torch.from_numpy(classes)))
    return loss, float((logits.argmax(axis=1) == classes).mean())


def _checked(state: State, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and int64 classes that fit the net holding `state`, or a `ValueError` naming what
    does not."""
    rows = as_rows(x)
    width = state["0.mean"].shape[0]
    classes = _classes(state)
    if rows.shape[1] != width:
        raise ValueError(f"x: {rows.shape[1]} columns, the federated model takes {width}")
    labels = np.asarray(y)
    if labels.shape != (len(rows),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"y: {labels.dtype} {labels.shape}; give one int class per row")
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"y: classes must lie in 0..{classes - 1} and rows must not be empty")
    return rows, labels.astype(np.int64)


def _to_numpy(module: "nn.Module") -> State:
    return OrderedDict((k, v.detach().numpy().copy()) for k, v in module.state_dict().items())


def to_record(state: State) -> ArrayRecord:
    """`state` as the record Flower carries, its names kept."""
    return ArrayRecord({name: Array(np.ascontiguousarray(value)) for name, value in state.items()})


def from_record(record: ArrayRecord) -> State:
    """The named arrays `record` carries."""
    return OrderedDict((name, array.numpy()) for name, array in record.items())
