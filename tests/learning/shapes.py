"""A task for models over raw windows: a shape at a random place in noise."""

import numpy as np

SIZE = 64  # samples per channel of a window
CHANNELS = 2


def placed_shapes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows `(n, CHANNELS * SIZE)`, channel-major: noise, and on the first channel a bump of
    16 samples somewhere, a sine period (class 0) or a square one (class 1) of the same
    energy. Where it sits tells nothing, so no column alone does either."""
    rng = np.random.default_rng(seed)
    x = 0.3 * rng.standard_normal((n, CHANNELS, SIZE))
    y = np.arange(n) % 2
    period = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    sine = np.sin(period) * np.sqrt(2)
    square = np.sign(np.sin(period) + 1e-9)
    for i in range(n):
        at = rng.integers(0, SIZE - 16)
        x[i, 0, at : at + 16] += 1.5 * (square if y[i] else sine)
    return x.reshape(n, -1).astype(np.float32), y.astype(np.int64)
