"""Several sources at their own rates, brought onto one time grid as one stream of chunks."""

import math
from collections.abc import Sequence

import numpy as np

from edgestack.processing._series import Hold, count_bad
from edgestack.processing._track import Track
from edgestack.sensing import Chunk, Quality, Source

__all__ = ["AlignedSource", "Aligner"]


class Aligner:
    """Chunks from several regular sources in, one chunk of all their channels out.

    The grid starts when the last source starts and runs at `rate_hz`; a grid point is given
    once every source has a sample at or after it, each source's value linearly interpolated
    between its two samples around it. A source's sample times are counted from its first
    chunk's `t0` at its `rate_hz`, so chunk edges and the rounding of later `t0`s do not move
    them. NaN and infinity are counted and replaced by the source's last good value.

        aligner = Aligner(100.0, [("accel_x",), ("temperature",)], [("g",), ("degC",)])
        aligner.push(0, imu.read(80), quality)   # empty until every source has data
        aligned = aligner.push(1, thermometer.read(2), quality)
    """

    def __init__(
        self,
        rate_hz: float,
        channels: Sequence[Sequence[str]],
        units: Sequence[Sequence[str]],
    ) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz: {rate_hz}, expected a rate above 0 Hz")
        flat = [name for names in channels for name in names]
        repeated = sorted({name for name in flat if flat.count(name) > 1})
        if repeated:
            raise ValueError(
                f"channels: {repeated} come from more than one source; rename them at the source"
            )
        self.rate_hz = rate_hz
        self.channels = [tuple(names) for names in channels]
        self.units = tuple(unit for group in units for unit in group)
        self.reset()

    def reset(self) -> None:
        """Forget every source's stream; the grid starts again when all have data."""
        self._starts: list[float | None] = [None] * len(self.channels)
        self._counts = [0] * len(self.channels)
        self._tracks = [Track(len(names)) for names in self.channels]
        self._holds = [Hold() for _ in self.channels]
        self._next = 0

    def push(self, source: int, chunk: Chunk, quality: Quality) -> Chunk:
        """Add the next chunk of source number `source`; return the grid points now covered."""
        if chunk.channels != self.channels[source]:
            raise ValueError(
                f"source {source}: channels {list(chunk.channels)}, expected "
                f"{list(self.channels[source])}; push each source's chunks under its own number"
            )
        if chunk.frame:
            raise ValueError(
                f"source {source}: frames {chunk.frame} cannot be aligned; only scalars"
            )
        if self._starts[source] is None and chunk.n:
            self._starts[source] = chunk.t0
        values = self._holds[source](
            chunk.data.astype(np.float64), count_bad(chunk.data, quality, chunk.channels)
        )
        times = (self._counts[source] + np.arange(chunk.n)) / chunk.rate_hz
        self._counts[source] += chunk.n
        self._tracks[source].add(times, values)
        return self._emit()

    def _emit(self) -> Chunk:
        names = tuple(name for group in self.channels for name in group)
        known = [start for start in self._starts if start is not None]
        begin = max(known) if known else 0.0
        # Seconds from each source's own start to the grid's start, once every source has one.
        offsets = [begin - (start if start is not None else begin) for start in self._starts]
        first = self._next
        if len(known) == len(self._starts):
            reach = min(
                track.end - offset for track, offset in zip(self._tracks, offsets, strict=True)
            )
            self._next = max(first, math.floor(reach * self.rate_hz) + 1)
        grid = np.arange(first, self._next) / self.rate_hz
        data = np.concatenate(
            [
                track.at(grid + offset) if len(grid) else np.empty((len(track.values), 0))
                for track, offset in zip(self._tracks, offsets, strict=True)
            ]
        )
        for track, offset in zip(self._tracks, offsets, strict=True):
            track.forget_before(self._next / self.rate_hz + offset)
        return Chunk(begin + first / self.rate_hz, self.rate_hz, names, self.units, data)


class AlignedSource:
    """A `Source` reading several sources and giving their channels on one grid at `rate_hz`.

    Each read takes from every source what the grid needs and returns at most `n` samples; the
    sources' bad input is counted in this source's `quality`.

        source = AlignedSource([imu, thermometer], rate_hz=100.0)
        chunk = source.read(100)   # imu's channels then the thermometer's
    """

    def __init__(self, sources: Sequence[Source], rate_hz: float) -> None:
        if not sources:
            raise ValueError("sources: none given; give at least one source to read")
        self.sources = list(sources)
        self.rate_hz = rate_hz
        self.quality = Quality()
        self._aligner = Aligner(
            rate_hz, [s.channels for s in self.sources], [s.units for s in self.sources]
        )
        self.channels = tuple(name for s in self.sources for name in s.channels)
        self.units = self._aligner.units
        self._ready: list[Chunk] = []

    def read(self, n: int) -> Chunk:
        waiting = sum(chunk.n for chunk in self._ready)
        if waiting < n:
            for number, source in enumerate(self.sources):
                wanted = math.ceil((n - waiting) * source.rate_hz / self.rate_hz)
                self._ready.append(self._aligner.push(number, source.read(wanted), self.quality))
                _absorb(self.quality, source.quality)
        ready = [chunk for chunk in self._ready if chunk.n] or self._ready[-1:]
        if not ready:
            return Chunk.empty(0.0, self.rate_hz, self.channels, self.units)
        data = np.concatenate([chunk.data for chunk in ready], axis=1)
        out = ready[0].with_data(data[:, :n])
        self._ready = [out.with_data(data[:, n:], t0=out.t0 + out.n / self.rate_hz)]
        return out

    def close(self) -> None:
        for source in self.sources:
            source.close()


def _absorb(into: Quality, source: Quality) -> None:
    """Move what `source` counted since its last take into `into`, examples included."""
    counts, examples = source.take()
    for reason, example in examples:
        into.count(reason, example=example)
        counts[reason] -= 1
    for reason, n in counts.items():
        into.count(reason, n)
