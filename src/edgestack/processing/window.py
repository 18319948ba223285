"""Cutting a stream into fixed-size, evenly spaced windows, whatever size the chunks come in."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Windower"]


class Windower:
    """Windows of `size` samples starting every `hop` samples; `hop > size` leaves gaps.

        windower = Windower(size=1024, hop=512)
        windower.push(chunk.data)   # (k, channels, 1024), k >= 0

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
        """Add `(channels, n)` samples; return the windows they complete, `(k, channels, size)`."""
        if data.ndim != 2:
            raise ValueError(f"data: shape {data.shape}, expected (channels, n)")
        if self._skip:
            dropped = min(self._skip, data.shape[1])
            data = data[:, dropped:]
            self._skip -= dropped
        if self._pending is not None:
            if self._pending.shape[0] != data.shape[0]:
                raise ValueError(
                    f"data: {data.shape[0]} channels after {self._pending.shape[0]}; "
                    "reset() before changing channels"
                )
            data = np.concatenate([self._pending, data], axis=1)
        length = data.shape[1]
        if length < self.size:
            self._pending = data.copy()
            return np.empty((0, data.shape[0], self.size), dtype=data.dtype)
        count = (length - self.size) // self.hop + 1
        consumed = count * self.hop
        self._pending = data[:, consumed:].copy()
        self._skip = max(consumed - length, 0)
        views = sliding_window_view(data, self.size, axis=1)[:, : consumed : self.hop]
        return np.ascontiguousarray(views.transpose(1, 0, 2))

    def reset(self) -> None:
        """Forget the partial window."""
        self._pending = None
        self._skip = 0
