"""PyTorch pieces of the net trainers, imported only when a net trains: torch takes seconds to
import, and devices, which run the exported ONNX, never need it."""

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import onnx
import torch
from torch import nn

from edgestack.learning._onnx import OPSET

__all__ = [
    "Augment",
    "ReconstructionError",
    "Standardise",
    "autoencoder",
    "cnn1d",
    "cnn2d",
    "export",
    "export_graph",
    "forward",
    "seeded",
    "standardise",
    "train",
]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EpochDone = Callable[[int, int], None]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class Standardise(nn.Module):
    """`(x - mean) / std` per column, fitted offline and carried inside the exported graph."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ReconstructionError(nn.Module):
    """Mean squared error of `net`'s reconstruction of the standardised row, `(n, 1)`."""

    average: torch.Tensor

    def __init__(self, scale: Standardise, net: nn.Module, width: int) -> None:
        super().__init__()
        self.scale = scale
        self.net = net
        # A product with a constant column, not `mean`: ReduceMean takes its axes as an input
        # from opset 18, which the exporter cannot convert back to the pinned opset.
        self.register_buffer("average", torch.full((width, 1), 1.0 / width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.scale(x)
        return ((z - self.net(z)) ** 2) @ self.average


def standardise(x: np.ndarray, groups: int) -> Standardise:
    """Scaling fitted on `x`, one mean and deviation per group of adjacent columns (a channel
    of a folded window or image; every column its own group for plain rows)."""
    n, width = x.shape
    per = x.reshape(n, groups, width // groups).astype(np.float64)
    mean = per.mean(axis=(0, 2))
    std = per.std(axis=(0, 2))
    std[std < 1e-6] = 1.0  # a constant channel carries nothing to scale
    return Standardise(np.repeat(mean, width // groups), np.repeat(std, width // groups))


def cnn1d(x: np.ndarray, classes: int, shape: tuple[int, int], filters: int) -> nn.Module:
    """Rows of `channels * size` columns, channel-major, folded to `(n, channels, size)`.

    Three convolutions at full resolution, each normalised (batch norm, folded into the
    convolution when exported), then the mean over time (global average pooling): a fully
    convolutional net of the kind that holds up on small time-series sets, where shapes may
    sit anywhere in the window."""
    channels, size = shape

    def block(given: int, made: int, kernel: int) -> list[nn.Module]:
        return [
            nn.Conv1d(given, made, kernel, padding=kernel // 2),
            nn.BatchNorm1d(made),
            nn.ReLU(),
        ]

    return nn.Sequential(
        standardise(x, channels),
        nn.Unflatten(1, shape),
        *block(channels, filters, 7),
        *block(filters, 2 * filters, 5),
        *block(2 * filters, 2 * filters, 3),
        # A fixed window, not adaptive pooling, which exports as ReduceMean (see
        # ReconstructionError).
        nn.AvgPool1d(size),
        nn.Flatten(),
        nn.Linear(2 * filters, classes),
    )


def cnn2d(x: np.ndarray, classes: int, shape: tuple[int, int, int], filters: int) -> nn.Module:
    """Rows of `channels * height * width` columns, channel-major then row by row, folded to
    `(n, channels, height, width)`."""
    channels, height, width = shape
    return nn.Sequential(
        standardise(x, channels),
        nn.Unflatten(1, shape),
        nn.Conv2d(channels, filters, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(filters, 2 * filters, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * filters * (height // 4) * (width // 4), classes),
    )


def autoencoder(x: np.ndarray, hidden: int, bottleneck: int) -> ReconstructionError:
    width = x.shape[1]
    net = nn.Sequential(
        nn.Linear(width, hidden),
        nn.ReLU(),
        nn.Linear(hidden, bottleneck),
        nn.ReLU(),
        nn.Linear(bottleneck, hidden),
        nn.ReLU(),
        nn.Linear(hidden, width),
    )
    return ReconstructionError(standardise(x, width), net, width)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one thread for a while: batches of these small nets are too small to share,
    and threads that wait on busy cores made training several times slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Weights drawn from `seed`, leaving torch's global generator as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def train(
    module: nn.Module,
    x: np.ndarray,
    target: np.ndarray,
    loss: Loss,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    on_epoch: EpochDone | None = None,
    augment: Augment | None = None,
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
    patience: int = 0,
) -> int:
    """Adam over shuffled mini-batches of `(x, target)`, each batch through `augment` when
    given, for `epochs` passes; the passes made are returned.

    With `held_out` rows and their classes, the weights of the pass that got the fewest of them
    wrong (then with the lowest loss on them) are kept, and training stops once `patience`
    passes in a row found none better. A loss alone chose nets that had barely moved on
    validation sets of a few rows, where a confident mistake costs more than a timid guess."""
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    targets = torch.from_numpy(np.ascontiguousarray(target))
    order = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate)
    best, best_state, since, done = (len(target) + 1, 0.0), None, 0, 0
    with _one_thread():
        while done < epochs and (held_out is None or since < patience):
            module.train()
            for batch in torch.randperm(len(inputs), generator=order).split(batch_size):
                given = inputs[batch] if augment is None else augment(inputs[batch], order)
                optimiser.zero_grad()
                loss(module(given), targets[batch]).backward()
                optimiser.step()
            done += 1
            if on_epoch is not None:
                on_epoch(done, epochs)
            if held_out is not None:
                scores = torch.from_numpy(forward(module, held_out[0]))
                goal = torch.from_numpy(held_out[1])
                now = (int((scores.argmax(dim=1) != goal).sum()), float(loss(scores, goal)))
                since = 0 if now < best else since + 1
                if now < best:
                    best, best_state = now, copy.deepcopy(module.state_dict())
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return done


def forward(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """`module`'s output for rows `x`, without gradients, float32."""
    module.eval()
    with torch.no_grad(), _one_thread():
        out = module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return out.numpy().astype(np.float32)


def export(module: nn.Module, width: int, output: str) -> onnx.ModelProto:
    """`module` as ONNX at the pinned opset: input `features` `[batch, width]`, output `output`."""
    # Two rows: an example batch of one would fix the batch axis to 1.
    return export_graph(module, torch.zeros(2, width), "features", [output])


def export_graph(
    module: nn.Module, example: torch.Tensor, given: str, outputs: list[str]
) -> onnx.ModelProto:
    """`module` as ONNX at the pinned opset: one input named `given`, shaped like `example`
    but for its first axis, the batch, and the outputs `outputs` in the order it returns them.
    """
    module.eval()
    with warnings.catch_warnings():
        # torch.export's own use of a deprecated pytree helper, nothing this code can change.
        warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)`", FutureWarning)
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[given],
            output_names=outputs,
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    assert program is not None, "the dynamo exporter always returns its program"
    return program.model_proto
