"""Cutting a stream into fixed-size, evenly spaced windows, whatever size the chunks come in."""

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["Windower"]


class Windower:
    """Windows of `size` samples starting every `hop` samples; `hop > size` leaves gaps.

        windower = Windower(size=1024, hop=512)
        windower.push(chunk.data)   # (k, channels, 1024, *frame), k >= 0

    Feeding a recording in pieces gives exactly the windows of feeding it whole.
    """

    def __init__(self, size: int, hop: int) -> None:
        if size < 1 or hop < 1:
            raise ValueError(f"size and hop must be >= 1, got size={size}, hop={hop}")
        self.size = size
        self.hop = hop
        self._pending: np.ndarray | None = None  # samples from the next window's start onwards
        self._skip = 0  # samples still to drop before the next window starts (hop > size)

    def push(self, data: np.ndarray) -> np.ndarray:
        """Add `(channels, n, *frame)` samples; return the windows they complete,
        `(k, channels, size, *frame)`."""
        if data.ndim < 2:
            raise ValueError(f"data: shape {data.shape}, expected (channels, n, *frame)")
        if self._skip:
            dropped = min(self._skip, data.shape[1])
            data = data[:, dropped:]
            self._skip -= dropped
        joined = self._pending is not None
        if self._pending is not None:
            if _layout(self._pending) != _layout(data):
                raise ValueError(
                    f"data: shape {data.shape} after {self._pending.shape}; "
                    "reset() before changing channels or frame size"
                )
            data = np.concatenate([self._pending, data], axis=1)
        length = data.shape[1]
        if length < self.size:
            # A joined array is this windower's own; the caller's is copied, as it may change.
            self._pending = data if joined else data.copy()
            return np.empty((0, data.shape[0], self.size, *data.shape[2:]), dtype=data.dtype)
        count = (length - self.size) // self.hop + 1
        consumed = count * self.hop
        self._pending = data[:, consumed:].copy()
        self._skip = max(consumed - length, 0)
        if count == 1:
            # What a stream's chunk completes most often, for a slice's price. A joined array
            # is this windower's own and never written again: a view of it is enough.
            window = data[None, :, : self.size]
            return window if joined else window.copy()
        # Window i starts `i * hop` samples in: a strided view, copied once. (`as_strided` costs a
        # fraction of `sliding_window_view`'s checks, which a stream pays at every chunk.)
        channel, sample, *frame = data.strides
        views = as_strided(
            data,
            shape=(count, data.shape[0], self.size, *data.shape[2:]),
            strides=(self.hop * sample, channel, sample, *frame),
            writeable=False,
        )
        return views.copy()

    def reset(self) -> None:
        """Forget the partial window."""
        self._pending = None
        self._skip = 0


def _layout(data: np.ndarray) -> tuple[int, ...]:
    """Channels and frame shape: what must not change between pushes."""
    return (data.shape[0], *data.shape[2:])
