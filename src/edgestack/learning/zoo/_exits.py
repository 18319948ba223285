"""PyTorch pieces of the multi-exit 1D-CNN, imported only when it trains or is cut in two."""

import numpy as np
import torch
from torch import nn

from edgestack.learning.zoo._torch import standardise

__all__ = ["Head", "MultiExit", "Tail", "multi_exit_cnn1d"]


class MultiExit(nn.Module):
    """`blocks` run in turn; `exit` classifies the output of the first `exit_after` of them.

    In training mode the output is `(n, 2, classes)`, the exit's logits then the final ones,
    so one loss trains both; in eval mode it is the final logits `(n, classes)` alone, which
    is what the net trainers score held-out rows with, predict with and export.
    """

    def __init__(self, blocks: list[nn.Module], exit: nn.Module, exit_after: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.exit = exit
        self.exit_after = exit_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        early = None
        for i, block in enumerate(self.blocks):
            if i == self.exit_after and self.training:
                early = self.exit(x)
            x = block(x)
        return x if early is None else torch.stack((early, x), dim=1)


class Head(nn.Module):
    """The first `at` blocks of `net` (`at` at least its `exit_after`) and its exit: the
    exit's probabilities and the tensor the tail goes on from."""

    def __init__(self, net: MultiExit, at: int) -> None:
        super().__init__()
        self.before = nn.Sequential(*net.blocks[: net.exit_after])
        self.exit = net.exit
        self.after = nn.Sequential(*net.blocks[net.exit_after : at])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.before(x)
        return torch.softmax(self.exit(x), dim=1), self.after(x)


class Tail(nn.Module):
    """The blocks of `net` from `at` on, and the final probabilities."""

    def __init__(self, net: MultiExit, at: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*net.blocks[at:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.blocks(x), dim=1)


def multi_exit_cnn1d(
    x: np.ndarray, classes: int, shape: tuple[int, int], filters: int, exit_after: int
) -> MultiExit:
    """The blocks of `_torch.cnn1d` cut where a split may fall, the first two halving the time
    axis so the tensor a split sends shrinks, and an exit (global average pooling and a linear
    layer, the final classifier's form) after `exit_after` of them."""
    channels, size = shape

    def conv(given: int, made: int, kernel: int) -> list[nn.Module]:
        return [
            nn.Conv1d(given, made, kernel, padding=kernel // 2),
            nn.BatchNorm1d(made),
            nn.ReLU(),
        ]

    def classifier(given: int, length: int) -> nn.Module:
        # A fixed window, not adaptive pooling, which exports as ReduceMean at this opset.
        return nn.Sequential(nn.AvgPool1d(length), nn.Flatten(), nn.Linear(given, classes))

    widths = [channels, filters, 2 * filters, 2 * filters]
    lengths = [size, size // 2, size // 4, size // 4]
    blocks: list[nn.Module] = [
        nn.Sequential(
            standardise(x, channels),
            nn.Unflatten(1, shape),
            *conv(channels, filters, 7),
            nn.MaxPool1d(2),
        ),
        nn.Sequential(*conv(filters, 2 * filters, 5), nn.MaxPool1d(2)),
        nn.Sequential(*conv(2 * filters, 2 * filters, 3)),
        classifier(2 * filters, lengths[3]),
    ]
    return MultiExit(blocks, classifier(widths[exit_after], lengths[exit_after]), exit_after)
