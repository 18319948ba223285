"""The net a federation trains: a small MLP over feature rows, built and trained with the zoo's
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


def pooled_scaling(parts: list[Moments]) -> Scaling:
    """Mean and deviation of each column over every device's rows, from their `moments`; a
    column that does not vary keeps a deviation of 1."""
    rows = sum(n for n, _, _ in parts)
    mean = np.sum([total for _, total, _ in parts], axis=0) / rows
    variance = np.sum([squares for _, _, squares in parts], axis=0) / rows - mean**2
    std = np.sqrt(np.maximum(variance, 0.0))
    std[std < 1e-6] = 1.0
    return mean, std


def build(
    width: int, classes: int, hidden: int, *, seed: int, scaling: Scaling | None = None
) -> State:
    """Fresh weights of an MLP taking rows of `width` columns to `classes` logits.

    Its first layer scales each column by `scaling` (mean, deviation; the identity without
    it), fixed for the whole run: a device never refits it, as each would to its own skewed
    share of the classes, and averaging those mixes units."""
    from torch import nn

    from edgestack.learning.zoo import _torch

    mean, std = scaling if scaling is not None else (np.zeros(width), np.ones(width))
    with _torch.seeded(seed):
        module = nn.Sequential(
            _torch.Standardise(mean, std),
            nn.Linear(width, hidden),
            nn.ReLU(),
            nn.Linear(hidden, classes),
        )
    return _to_numpy(module)


def from_state(state: State) -> "nn.Module":
    """The MLP holding `state`, its sizes read from the arrays' shapes."""
    import torch
    from torch import nn

    from edgestack.learning.zoo import _torch

    hidden, width = state["1.weight"].shape
    classes = state["3.weight"].shape[0]
    module = nn.Sequential(
        _torch.Standardise(np.zeros(width), np.ones(width)),
        nn.Linear(width, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return module


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
    width = state["1.weight"].shape[1]
    classes = state["3.weight"].shape[0]
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
