"""Raw sensor recordings from CSV or Parquet files, cut into feature windows by a spec."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from edgestack.bundle import InputSpec
from edgestack.processing import FeaturePipeline
from edgestack.sensing import Chunk

__all__ = ["TIME_COLUMNS", "RecordingError", "Windows", "read_recording", "windows"]

TIME_COLUMNS = ("t", "time")
"""The names a recording's time column may have: seconds, or timestamps."""

# Times below this many seconds are offsets from the recording's start, not epoch seconds
# (1e9 s after the epoch is September 2001, long before any recording).
_EPOCH_SECONDS = 1e9
# Samples pushed through the pipeline at once: bounds memory, and paces the progress bar.
_CHUNK_WINDOWS = 64


class RecordingError(ValueError):
    """A recording that cannot be read as the spec needs; the message says why and the fix."""


@dataclass(frozen=True)
class Windows:
    """Feature rows `(k, len(spec.features))` float32, the time each window ended, and how many
    readings were not finite numbers (each counted and read as 0, as on a device)."""

    features: np.ndarray
    times: list[datetime]
    bad_readings: int


def read_recording(path: Path) -> pa.Table:
    """The table in a `.csv` or `.parquet` file."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise RecordingError(f"{path}: unknown format '{suffix}'; give a .csv or .parquet file")
    try:
        return pa_csv.read_csv(path) if suffix == ".csv" else pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise RecordingError(f"cannot read {path}: {exc}") from exc


def windows(
    table: pa.Table,
    spec: InputSpec,
    *,
    recorded_at: datetime,
    progress: Callable[[int], None] = lambda done: None,
) -> Windows:
    """Features of the windows `spec` cuts from `table`'s sensor columns, in `spec.sensors` order.

    The readings are taken as sampled at `spec.rate_hz`, which the time column must agree with.
    Times in seconds below 1e9 count from the start of the recording, dated `recorded_at`.
    `progress` hears how many readings are done.
    """
    start, n = _start(table, spec.rate_hz, recorded_at)
    data = np.stack([_readings(table, sensor) for sensor in spec.sensors])
    bad = ~np.isfinite(data)
    data[bad] = 0.0
    try:
        pipeline = FeaturePipeline(spec)
        step = spec.window * _CHUNK_WINDOWS
        rows = []
        for begin in range(0, n, step):
            chunk = Chunk(
                t0=start + begin / spec.rate_hz,
                rate_hz=spec.rate_hz,
                channels=tuple(spec.sensors),
                units=("",) * len(spec.sensors),
                data=data[:, begin : begin + step],
            )
            rows.append(pipeline.push(chunk))
            progress(min(n, begin + step))
    except ValueError as exc:
        raise RecordingError(f"the spec cannot process this recording: {exc}") from exc
    features = np.concatenate(rows) if rows else np.empty((0, len(spec.features)), np.float32)
    if not len(features):
        raise RecordingError(
            f"{n} readings make no window of {spec.window}; record at least {spec.window} "
            f"readings ({spec.window / spec.rate_hz:g} s at {spec.rate_hz:g} Hz)"
        )
    ends = start + (np.arange(len(features)) * spec.hop + spec.window) / spec.rate_hz
    times = [datetime.fromtimestamp(t, UTC) for t in ends.tolist()]
    return Windows(features, times, int(bad.sum()))


def _column(table: pa.Table, name: str, role: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise RecordingError(
            f"the recording has no column '{name}' ({role}); its columns: "
            f"{', '.join(table.column_names) or 'none'}"
        )
    return table[name]


def _start(table: pa.Table, rate_hz: float, recorded_at: datetime) -> tuple[float, int]:
    """Epoch seconds of the first reading, and how many readings there are."""
    name = next((c for c in TIME_COLUMNS if c in table.column_names), TIME_COLUMNS[0])
    column = _column(table, name, f"the time, named {' or '.join(TIME_COLUMNS)}")
    if pa.types.is_timestamp(column.type):
        micros = column.cast(pa.timestamp("us")).cast(pa.int64())
        seconds = micros.to_numpy(zero_copy_only=False) / 1e6
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        seconds = column.to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        raise RecordingError(
            f"column '{name}' holds {column.type}; give seconds as numbers, or timestamps"
        )
    if len(seconds) == 0 or not np.isfinite(seconds).all():
        raise RecordingError(f"column '{name}' is empty or has missing times; fill it in")
    if len(seconds) > 1:
        step = float(np.median(np.diff(seconds)))
        if step <= 0:
            raise RecordingError(f"column '{name}' does not increase; sort the recording by time")
        if abs(step * rate_hz - 1) > 0.01:
            raise RecordingError(
                f"column '{name}' steps by {step:g} s ({1 / step:g} Hz) but the spec samples at "
                f"{rate_hz:g} Hz; resample the recording, or give --spec with rate_hz {1 / step:g}"
            )
    first = float(seconds[0])
    return (first if first >= _EPOCH_SECONDS else recorded_at.timestamp()), len(seconds)


def _readings(table: pa.Table, sensor: str) -> np.ndarray:
    column = _column(table, sensor, "a sensor of the spec")
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise RecordingError(f"column '{sensor}' holds {column.type}; give its readings as numbers")
    return column.to_numpy(zero_copy_only=False).astype(np.float32)
