"""A block of samples from several channels, the unit that moves along the hot path."""

from dataclasses import dataclass

import numpy as np

__all__ = ["Chunk"]


@dataclass(frozen=True)
class Chunk:
    """`data[c, i]` is sample `i` of channel `channels[c]`, taken at `t0 + i / rate_hz`.

    `data` is float32 of shape `(len(channels), n)`; other float input is converted.
    """

    t0: float
    rate_hz: float
    channels: tuple[str, ...]
    units: tuple[str, ...]
    data: np.ndarray

    def __post_init__(self) -> None:
        if len(self.units) != len(self.channels):
            raise ValueError(
                f"units: {len(self.units)} given for {len(self.channels)} channels; "
                "give one unit per channel"
            )
        if self.data.ndim != 2 or self.data.shape[0] != len(self.channels):
            raise ValueError(
                f"data: shape {self.data.shape}, expected ({len(self.channels)}, n), "
                "one row per channel"
            )
        if self.data.dtype != np.float32:
            # The dataclass is frozen; converting once here keeps every consumer on float32.
            object.__setattr__(self, "data", self.data.astype(np.float32))

    @property
    def n(self) -> int:
        """Samples per channel."""
        return int(self.data.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)
