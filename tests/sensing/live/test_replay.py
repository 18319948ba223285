import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet
import pytest

from edgestack.sensing import SOURCES, Chunk, ReplaySource

START = 1_700_000_000.0
PERIOD = 0.1


class _Clock:
    """Wall time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def _recording(rows: int = 20) -> pa.Table:
    t = START + PERIOD * np.arange(rows)
    return pa.table(
        {
            "t": t,
            "x": np.sin(t - START),
            "label": ["run"] * rows,  # not numeric: no channel by default
            "count": np.arange(rows, dtype=np.int64),
        }
    )


def _write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".csv":
        pyarrow.csv.write_csv(table, path)
    else:
        pyarrow.parquet.write_table(table, path)
    return path


def _read_all(source: ReplaySource, n: int) -> list[Chunk]:
    chunks = []
    while not source.finished:
        chunks.append(source.read(n))
    return chunks


@pytest.mark.parametrize("speed", [0.0, math.inf])
@pytest.mark.parametrize("name", ["run.csv", "run.parquet"])
def test_every_row_comes_back_in_order_as_fast_as_reads_ask(
    tmp_path: Path, name: str, speed: float
) -> None:
    recording = _recording()
    path = _write(recording, tmp_path / name)
    source = SOURCES.build("replay", {"path": path, "speed": speed, "units": {"x": "g"}})
    assert isinstance(source, ReplaySource)

    chunks = _read_all(source, 7)
    after = source.read(7)

    assert [chunk.n for chunk in chunks] == [7, 7, 6]
    assert source.channels == ("x", "count")
    assert source.units == ("g", "")
    assert source.rate_hz == pytest.approx(1 / PERIOD)
    np.testing.assert_array_equal(np.concatenate([c.timestamps for c in chunks]), recording["t"])
    data = np.hstack([c.data for c in chunks])
    np.testing.assert_allclose(data[0], recording["x"], rtol=1e-6)
    np.testing.assert_array_equal(data[1], recording["count"])
    assert after.n == 0


def test_real_time_replay_delivers_no_row_before_its_time(tmp_path: Path) -> None:
    path = _write(_recording(), tmp_path / "run.csv")
    clock = _Clock()
    source = ReplaySource(path, speed=1.0, clock=clock)

    first = source.read(100)  # playback starts here: only the first row is due
    clock.now += 0.25
    limited = source.read(1)
    rest_due = source.read(100)
    nothing_new = source.read(100)
    clock.now += 100.0
    remainder = source.read(100)

    np.testing.assert_array_equal(first.timestamps, [START])
    np.testing.assert_array_equal(limited.timestamps, [START + PERIOD])
    np.testing.assert_array_equal(rest_due.timestamps, [START + 2 * PERIOD])
    assert nothing_new.n == 0
    assert remainder.n == 17
    assert source.finished


def test_speed_scales_the_wall_time_between_rows(tmp_path: Path) -> None:
    path = _write(_recording(), tmp_path / "run.parquet")
    clock = _Clock()
    source = ReplaySource(path, speed=10.0, clock=clock)

    source.read(100)
    clock.now += 0.05  # half a recorded second
    chunk = source.read(100)

    np.testing.assert_allclose(chunk.timestamps, START + PERIOD * np.arange(1, 6))


def test_a_looping_replay_keeps_its_timestamps_increasing(tmp_path: Path) -> None:
    path = _write(_recording(5), tmp_path / "run.csv")
    source = ReplaySource(path, speed=0.0, loop=True)

    chunk = source.read(12)

    lap = 5 * PERIOD
    expected = START + np.concatenate([PERIOD * np.arange(5) + k * lap for k in range(3)])[:12]
    np.testing.assert_allclose(chunk.timestamps, expected)
    np.testing.assert_allclose(chunk.data[1], [0, 1, 2, 3, 4] * 2 + [0, 1])
    assert not source.finished


def test_rows_out_of_order_or_without_a_time_are_counted_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    path.write_text("when,x\n1.0,10\n2.0,20\n1.5,15\n,99\n3.0,30\n")

    source = ReplaySource(path, time_column="when", speed=0.0)
    chunk = source.read(10)

    np.testing.assert_array_equal(chunk.timestamps, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(chunk.data, [[10, 20, 30]])
    assert source.quality.take()[0] == {"time_backwards": 1, "missing_time": 1}


def test_a_timestamp_column_is_read_as_seconds_since_the_epoch(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    path.write_text("t,x\n2024-01-01T00:00:00,1\n2024-01-01T00:00:00.500,2\n")

    chunk = ReplaySource(path, speed=0.0).read(10)

    np.testing.assert_array_equal(chunk.timestamps, [1704067200.0, 1704067200.5])


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("run.csv", {"time_column": "time"}, "'time' is not a column; the file has: t, x"),
        ("run.csv", {"channels": ["label"]}, "column 'label' holds string, not numbers"),
        ("run.txt", {}, "neither .csv nor .parquet"),
    ],
)
def test_a_recording_that_does_not_fit_is_refused_with_the_fix(
    tmp_path: Path, name: str, params: dict[str, object], message: str
) -> None:
    path = tmp_path / name
    path.write_text("t,x,label\n1.0,2.0,a\n")

    with pytest.raises(ValueError, match=message):
        ReplaySource(path, **params)  # type: ignore[arg-type]
