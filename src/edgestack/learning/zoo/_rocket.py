"""MiniRocket's transform as a PyTorch module, imported only when it is fitted (torch takes
seconds to import; devices run the exported ONNX).

Dempster, Schmidt and Webb, "MiniRocket: a very fast (almost) deterministic transform for time
series classification" (KDD 2021): 84 kernels of length 9, weights -1 with 2 at three
positions, each at dilations spread exponentially up to the window; a bias per feature drawn
from quantiles of the kernel's output on a random training case; the feature is the
proportion of positive values (PPV) of the output minus the bias. Several channels: each
kernel and dilation sums its convolution over a random subset of the channels.
"""

import itertools
import math

import numpy as np
import torch
from torch import nn

__all__ = ["KERNELS", "LENGTH", "MiniRocket", "dilations", "fit_transform"]

LENGTH = 9
KERNELS = np.array(
    [
        [2.0 if i in chosen else -1.0 for i in range(LENGTH)]
        for chosen in itertools.combinations(range(LENGTH), 3)
    ],
    dtype=np.float32,
)
"""The 84 kernels, one row each."""
_MAX_DILATIONS = 32
_CHUNK_VALUES = 50_000_000  # comparisons per chunk of rows when transforming (about 250 MB)


def dilations(size: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    """The dilations for windows of `size` samples and how many features each gives per
    kernel, as the paper's reference code spreads them."""
    per_kernel = max(1, features // len(KERNELS))
    count = min(per_kernel, _MAX_DILATIONS)
    exponent = math.log2((size - 1) / (LENGTH - 1))
    spread = np.logspace(0, exponent, count, base=2).astype(np.int64)
    values, counts = np.unique(spread, return_counts=True)
    counts = (counts * (per_kernel / count)).astype(np.int64)
    for i in range(per_kernel - int(counts.sum())):
        counts[i % len(counts)] += 1
    return values, counts


def _quantiles(n: int) -> np.ndarray:
    # A low-discrepancy sequence (multiples of the golden ratio, mod 1): spread evenly.
    return np.array([(k * (math.sqrt(5) + 1) / 2) % 1 for k in range(1, n + 1)])


class _Dilation(nn.Module):
    """The 84 kernels at one dilation, over their channel subsets.

    A kernel is `3 * chosen - window`: three times the sum of the samples at its three chosen
    taps, minus the sum of all nine, over its channels. Both are convolutions with weights 0
    and 1, which 8-bit integers hold exactly; weights -1 and 2 they do not (symmetric int8
    maps 2 to 127, so -1 falls between -63 and -64), and that error, proportional to the
    signal's level, moved smooth series' features across their biases. `sums` says which
    window sum each kernel takes (kernels over the same channels share one).

    Kernels alternate between PPV over the whole padded output and over its valid part only;
    the first `padded` kernels are the former."""

    sums: torch.Tensor
    biases: torch.Tensor
    average_all: torch.Tensor
    average_valid: torch.Tensor

    def __init__(
        self,
        weight: np.ndarray,
        sums: np.ndarray,
        dilation: int,
        padded: int,
        biases: np.ndarray,
        size: int,
    ) -> None:
        super().__init__()
        self.pad = (LENGTH - 1) * dilation // 2
        self.padded = padded
        self.kernels = len(sums)
        self.conv = nn.Conv1d(
            weight.shape[1], len(weight), LENGTH, dilation=dilation, padding=self.pad, bias=False
        )
        self.conv.weight.data = torch.from_numpy(weight)
        self.conv.weight.requires_grad_(False)
        self.register_buffer("sums", torch.from_numpy(sums + self.kernels))
        self.register_buffer("biases", torch.from_numpy(biases[:, :, None]))
        # Means as products with constant columns: ReduceMean takes its axes as an input from
        # opset 18, which the exporter cannot convert back to the pinned opset.
        valid = size - 2 * self.pad
        self.register_buffer("average_all", torch.full((size, 1), 1.0 / size))
        self.register_buffer("average_valid", torch.full((valid, 1), 1.0 / valid))

    def convolved(self, x: torch.Tensor) -> torch.Tensor:
        """Each kernel's output, `(n, 84, size)`."""
        out = self.conv(x)
        return 3 * out[:, : self.kernels] - out.index_select(1, self.sums)

    def weights(self) -> np.ndarray:
        """The kernels as one convolution would hold them, `(84, channels, 9)`: -1 and 2."""
        w = self.conv.weight.detach().numpy()
        return 3 * w[: self.kernels] - w[self.sums.numpy()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convolved(x)
        size = out.shape[2]
        whole = out[:, : self.padded, None, :] > self.biases[: self.padded]
        valid = out[:, self.padded :, None, self.pad : size - self.pad] > self.biases[self.padded :]
        return torch.cat(
            [
                (whole.to(torch.float32) @ self.average_all).flatten(1),
                (valid.to(torch.float32) @ self.average_valid).flatten(1),
            ],
            dim=1,
        )


class MiniRocket(nn.Module):
    """Rows `(n, channels * size)` in, channel-major, PPV features `(n, F)` out."""

    def __init__(self, shape: tuple[int, int], blocks: list[_Dilation]) -> None:
        super().__init__()
        self.fold = nn.Unflatten(1, shape)
        self.blocks = nn.ModuleList(blocks)
        self.size = shape[1]
        self.width = sum(len(b.biases) * b.biases.shape[1] for b in blocks)
        """How many features it gives."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded = self.fold(x)
        return torch.cat([block(folded) for block in self.blocks], dim=1)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The features of rows `x`, in chunks of rows that bound the comparisons in memory."""
        step = max(1, _CHUNK_VALUES // (self.width * self.size))
        rows = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.no_grad():
            return torch.cat([self(chunk) for chunk in rows.split(step)]).numpy()


def fit_transform(x: np.ndarray, shape: tuple[int, int], features: int, seed: int) -> MiniRocket:
    """MiniRocket for rows `x` `(n, channels * size)`: channel subsets and biases drawn with
    `seed`, about `features` features (a multiple of 84)."""
    channels, size = shape
    rng = np.random.default_rng(seed)
    cases = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unflatten(1, shape)
    values, counts = dilations(size, features)
    quantiles = _quantiles(len(KERNELS) * int(counts.sum()))
    most = min(channels, LENGTH)
    blocks, start = [], 0
    for i, (dilation, per_kernel) in enumerate(zip(values.tolist(), counts.tolist(), strict=True)):
        # Kernels whose PPV spans the padding first, the others after (the paper alternates).
        order = sorted(range(len(KERNELS)), key=lambda k: (i + k) % 2)
        chosen = np.zeros((len(KERNELS), channels, LENGTH), dtype=np.float32)
        subsets: dict[tuple[int, ...], int] = {}
        sums = np.empty(len(KERNELS), dtype=np.int64)
        for row, k in enumerate(order):
            count = min(int(2 ** rng.uniform(0, math.log2(most + 1))), channels)
            subset = tuple(sorted(rng.choice(channels, count, replace=False).tolist()))
            chosen[row, list(subset)] = KERNELS[k] == 2.0
            sums[row] = subsets.setdefault(subset, len(subsets))
        window = np.zeros((len(subsets), channels, LENGTH), dtype=np.float32)
        for subset, row in subsets.items():
            window[row, list(subset)] = 1.0
        padded = sum((i + k) % 2 == 0 for k in range(len(KERNELS)))
        empty = np.zeros((len(KERNELS), per_kernel), dtype=np.float32)
        block = _Dilation(np.concatenate([chosen, window]), sums, dilation, padded, empty, size)
        # Each kernel's biases from its output on one random training case.
        examples = cases[torch.from_numpy(rng.integers(len(cases), size=len(KERNELS)))]
        with torch.no_grad():
            out = block.convolved(examples)
        own = out[torch.arange(len(KERNELS)), torch.arange(len(KERNELS))].numpy()
        share = quantiles[start : start + len(KERNELS) * per_kernel].reshape(len(KERNELS), -1)
        start += len(KERNELS) * per_kernel
        biases = np.stack([np.quantile(own[k], share[k]) for k in range(len(KERNELS))])
        block.biases.copy_(torch.from_numpy(biases.astype(np.float32))[:, :, None])
        blocks.append(block)
    return MiniRocket(shape, blocks)
