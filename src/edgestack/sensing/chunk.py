"""A block of samples from several channels, the unit that moves along the hot path."""

from dataclasses import dataclass

import numpy as np

__all__ = ["Chunk"]


@dataclass(frozen=True)
class Chunk:
    """`data[c, i]` is sample `i` of channel `channels[c]`, taken at `t0 + i / rate_hz`.

    `data` is float32 of shape `(len(channels), n)`, or `(len(channels), n, *frame)` for sensors
    whose one sample is an array (a camera frame is `(height, width)`); other float input is
    converted. Sources whose readings arrive at irregular times give their times, in seconds
    since the epoch, as `timestamps` (float64, `(n,)`); `rate_hz` is then the nominal rate and a
    `resample` step puts them on a regular grid.
    """

    t0: float
    rate_hz: float
    channels: tuple[str, ...]
    units: tuple[str, ...]
    data: np.ndarray
    timestamps: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.units) != len(self.channels):
            raise ValueError(
                f"units: {len(self.units)} given for {len(self.channels)} channels; "
                "give one unit per channel"
            )
        if self.data.ndim < 2 or self.data.shape[0] != len(self.channels):
            raise ValueError(
                f"data: shape {self.data.shape}, expected ({len(self.channels)}, n, ...), "
                "one row per channel"
            )
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz: {self.rate_hz}, expected a rate above 0 Hz")
        if self.timestamps is not None and self.timestamps.shape != (self.data.shape[1],):
            raise ValueError(
                f"timestamps: shape {self.timestamps.shape}, expected ({self.data.shape[1]},), "
                "one time per sample"
            )
        if self.data.dtype != np.float32:
            # The dataclass is frozen; converting once here keeps every consumer on float32.
            object.__setattr__(self, "data", self.data.astype(np.float32))

    @property
    def n(self) -> int:
        """Samples per channel."""
        return int(self.data.shape[1])

    @property
    def frame(self) -> tuple[int, ...]:
        """The shape of one sample: `()` for a scalar sensor."""
        return tuple(self.data.shape[2:])

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def times(self) -> np.ndarray:
        """When each sample was taken, seconds since the epoch, float64 `(n,)`."""
        if self.timestamps is not None:
            return self.timestamps
        return self.t0 + np.arange(self.n) / self.rate_hz

    def with_data(self, data: np.ndarray, **changes: object) -> "Chunk":
        """The same stream position with new samples (and, optionally, other fields changed)."""
        fields = {
            "t0": self.t0,
            "rate_hz": self.rate_hz,
            "channels": self.channels,
            "units": self.units,
            "timestamps": self.timestamps,
            **changes,
        }
        return Chunk(data=data, **fields)  # type: ignore[arg-type]

    @classmethod
    def empty(
        cls,
        t0: float,
        rate_hz: float,
        channels: tuple[str, ...],
        units: tuple[str, ...],
        frame: tuple[int, ...] = (),
    ) -> "Chunk":
        """No samples yet: what a live source returns when nothing has arrived."""
        return cls(t0, rate_hz, channels, units, np.empty((len(channels), 0, *frame), np.float32))
