"""A recording played back as if it were arriving now: CSV or Parquet, in real time or faster.

source = ReplaySource(Path("run-3.parquet"), time_column="t", speed=10.0)
chunk = source.read(1000)   # the rows whose time has come, ten times faster than recorded
"""

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import Field

from edgestack.sensing.chunk import Chunk
from edgestack.sensing.live._payload import units_for
from edgestack.sensing.quality import Quality
from edgestack.sensing.source import SOURCES

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ReplaySource"]

_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


@SOURCES.register("replay")
class ReplaySource:
    """Rows of a `.csv` or `.parquet` file, paced by their timestamps; implements `Source`.

    The time column holds seconds since the epoch or timestamps; the channels are the named
    columns (by default every other numeric one). The file is read whole when the source is
    made; rows without a time (`missing_time`) or earlier than a row before them
    (`time_backwards`) are counted in `quality` and dropped then.

    Pacing starts at the first `read`: from then on a row is due once `speed` times the wall
    time elapsed on `clock` covers its distance from the first row, and `read(n)` returns the
    due rows not yet read, at most `n`, without waiting. `speed` 0 or infinity delivers rows as
    fast as reads ask. With `loop`, the recording starts again after its last row, its
    timestamps moved on by its length plus one period so they keep increasing; without it,
    reads after the last row are empty and `finished` is True. Timestamps are the recording's.
    """

    def __init__(
        self,
        path: Path,
        time_column: str = "t",
        channels: Sequence[str] | None = None,
        units: Mapping[str, str] | Sequence[str] | None = None,
        speed: Annotated[float, Field(ge=0)] = 1.0,
        loop: bool = False,
        rate_hz: Annotated[float, Field(gt=0)] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quality = Quality()
        table = _load(Path(path))
        self.channels = tuple(channels) if channels is not None else _numeric(table, time_column)
        if not self.channels:
            raise ValueError(f"channels: {path} has no numeric column besides {time_column!r}")
        self.units = units_for(self.channels, units)
        times = _seconds(table, time_column)
        data = np.vstack([_floats(table, name) for name in self.channels]).astype(np.float32)
        self._times, self._data = self._keep_ordered(times, data, path)
        steps = np.diff(self._times)
        steps = steps[steps > 0]
        self.rate_hz = float(rate_hz or (1.0 / np.median(steps) if steps.size else 1.0))
        self._lap_s = float(self._times[-1] - self._times[0]) + 1.0 / self.rate_hz
        self._speed = math.inf if speed == 0 else float(speed)
        self._loop = loop
        self._clock = clock
        self._started: float | None = None
        self._lap = 0
        self._next = 0
        self._finished = False

    @property
    def finished(self) -> bool:
        """Whether every row has been read and the recording does not loop."""
        return self._finished

    def read(self, n: int) -> Chunk:
        if n < 0:
            raise ValueError(f"n: {n} samples requested; ask for 0 or more")
        now = self._clock()
        if self._started is None:
            self._started = now
        # How far into the recording (from its first row, all laps included) playback has come.
        played = (now - self._started) * self._speed if self._speed < math.inf else math.inf
        pieces: list[tuple[slice, float]] = []
        wanted = n
        while wanted and not self._finished:
            offset = self._lap * self._lap_s
            due = int(np.searchsorted(self._times - self._times[0], played - offset, "right"))
            stop = min(due, self._next + wanted)
            if stop > self._next:
                pieces.append((slice(self._next, stop), offset))
                wanted -= stop - self._next
                self._next = stop
            if self._next < len(self._times):
                break
            if self._loop:
                self._lap, self._next = self._lap + 1, 0
            else:
                self._finished = True
        return self._chunk(pieces)

    def close(self) -> None:
        """Stop the replay; the file was closed once read."""
        self._finished = True

    def _chunk(self, pieces: list[tuple[slice, float]]) -> Chunk:
        if not pieces:
            t0 = float(self._times[self._next - 1] if self._next else self._times[0])
            return Chunk.empty(t0, self.rate_hz, self.channels, self.units)
        times = np.concatenate([self._times[rows] + offset for rows, offset in pieces])
        data = np.concatenate([self._data[:, rows] for rows, _ in pieces], axis=1)
        return Chunk(float(times[0]), self.rate_hz, self.channels, self.units, data, times)

    def _keep_ordered(
        self, times: np.ndarray, data: np.ndarray, path: Path
    ) -> tuple[np.ndarray, np.ndarray]:
        timed = ~np.isnan(times)
        self.quality.count("missing_time", int(np.count_nonzero(~timed)), example=str(path))
        times, data = times[timed], data[:, timed]
        ordered = times >= np.maximum.accumulate(times)
        backwards = np.flatnonzero(~ordered)
        if backwards.size:
            example = f"row {backwards[0]} at {times[backwards[0]]} after a later one"
            self.quality.count("time_backwards", backwards.size, example=example)
        if not ordered.any():
            raise ValueError(f"path: {path} has no rows with a time; nothing to replay")
        return times[ordered], data[:, ordered]


def _load(path: Path) -> "pa.Table":
    # pyarrow loads with a recording, not at import: about 30 MB that other sources never need.
    import pyarrow.csv
    import pyarrow.parquet

    if path.suffix in (".parquet", ".pq"):
        return pyarrow.parquet.read_table(path)
    if path.suffix == ".csv":
        return pyarrow.csv.read_csv(path)
    raise ValueError(f"path: {path} is neither .csv nor .parquet; give a recording in one of them")


def _column(table: "pa.Table", name: str) -> "pa.ChunkedArray":
    if name not in table.column_names:
        raise ValueError(f"{name!r} is not a column; the file has: {', '.join(table.column_names)}")
    return table.column(name)


def _numeric(table: "pa.Table", time_column: str) -> tuple[str, ...]:
    _column(table, time_column)
    return tuple(
        field.name for field in table.schema if field.name != time_column and _is_number(field.type)
    )


def _is_number(kind: "pa.DataType") -> bool:
    import pyarrow as pa  # loaded by `_load` already

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _floats(table: "pa.Table", name: str) -> np.ndarray:
    """The column as float64, nulls as NaN."""
    import pyarrow as pa  # loaded by `_load` already

    column = _column(table, name)
    if not _is_number(column.type):
        raise ValueError(f"channels: column {name!r} holds {column.type}, not numbers")
    return column.cast(pa.float64(), safe=False).to_numpy()


def _seconds(table: "pa.Table", name: str) -> np.ndarray:
    """The time column in seconds since the epoch, float64, nulls as NaN."""
    import pyarrow as pa  # loaded by `_load` already

    column = _column(table, name)
    if pa.types.is_timestamp(column.type):
        ticks = column.cast(pa.int64()).cast(pa.float64(), safe=False).to_numpy()
        return ticks / _PER_SECOND[column.type.unit]
    if not _is_number(column.type):
        raise ValueError(f"time_column: {name!r} holds {column.type}, not times or numbers")
    return _floats(table, name)
