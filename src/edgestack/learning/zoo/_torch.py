"""PyTorch pieces of the net trainers, imported only when a net trains: torch takes seconds to
import, and devices, which run the exported ONNX, never need it."""

import contextlib
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import onnx
import torch
from torch import nn

from edgestack.learning._onnx import OPSET

__all__ = [
    "ReconstructionError",
    "Standardise",
    "autoencoder",
    "cnn1d",
    "cnn2d",
    "export",
    "forward",
    "seeded",
    "standardise",
    "train",
]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EpochDone = Callable[[int, int], None]


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
    """Rows of `channels * size` columns, channel-major, folded to `(n, channels, size)`."""
    channels, size = shape
    length = size
    for _ in range(3):  # each convolution below halves the length, rounding up
        length = (length + 1) // 2
    return nn.Sequential(
        standardise(x, channels),
        nn.Unflatten(1, shape),
        nn.Conv1d(channels, filters, kernel_size=7, stride=2, padding=3),
        nn.ReLU(),
        nn.Conv1d(filters, 2 * filters, kernel_size=5, stride=2, padding=2),
        nn.ReLU(),
        nn.Conv1d(2 * filters, 2 * filters, kernel_size=5, stride=2, padding=2),
        nn.ReLU(),
        # A fixed window, not adaptive pooling, which exports as ReduceMean (see
        # ReconstructionError).
        nn.AvgPool1d(length),
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
) -> None:
    """Adam over shuffled mini-batches of `(x, target)` for `epochs` passes."""
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    targets = torch.from_numpy(np.ascontiguousarray(target))
    order = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate)
    module.train()
    with _one_thread():
        for epoch in range(epochs):
            for batch in torch.randperm(len(inputs), generator=order).split(batch_size):
                optimiser.zero_grad()
                loss(module(inputs[batch]), targets[batch]).backward()
                optimiser.step()
            if on_epoch is not None:
                on_epoch(epoch + 1, epochs)
    module.eval()


def forward(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """`module`'s output for rows `x`, without gradients, float32."""
    module.eval()
    with torch.no_grad(), _one_thread():
        out = module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return out.numpy().astype(np.float32)


def export(module: nn.Module, width: int, output: str) -> onnx.ModelProto:
    """`module` as ONNX at the pinned opset: input `features` `[batch, width]`, output `output`."""
    module.eval()
    # Two rows: an example batch of one would fix the batch axis to 1.
    example = torch.zeros(2, width)
    with warnings.catch_warnings():
        # torch.export's own use of a deprecated pytree helper, nothing this code can change.
        warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)`", FutureWarning)
        program = torch.onnx.export(
            module,
            (example,),
            input_names=["features"],
            output_names=[output],
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    assert program is not None, "the dynamo exporter always returns its program"
    return program.model_proto
