"""`edgestack data` before it reaches a hub: recordings read, cut and refused with reasons."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from edgestack.cli import app
from edgestack.cli.recording import RecordingError, read_recording, windows
from edgestack.processing import vibration_spec

SPEC = vibration_spec(rate_hz=1000.0, window=250, hop=250)
SENSORS = SPEC.sensors
RECORDED_AT = datetime(2025, 3, 1, tzinfo=UTC)


def _recording(seconds: float, *, rate_hz: float = 1000.0, drop: str | None = None) -> pa.Table:
    n = int(seconds * rate_hz)
    rng = np.random.default_rng(7)
    columns = {"t": np.arange(n) / rate_hz}
    columns |= {s: rng.normal(size=n).astype(np.float32) for s in SENSORS if s != drop}
    return pa.table(columns)


def _import(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["data", "import", *args, "--hub", "http://127.0.0.1:9"], env={"COLUMNS": "300"}
    )
    return result.exit_code, " ".join(result.output.split())


def test_a_recording_becomes_one_feature_row_per_window_timed_at_its_end() -> None:
    table = _recording(1.1)

    cut = windows(table, SPEC, recorded_at=RECORDED_AT)

    assert cut.features.shape == (4, len(SPEC.features))
    assert cut.features.dtype == np.float32
    assert cut.times == [RECORDED_AT + timedelta(seconds=0.25 * (i + 1)) for i in range(4)]
    assert cut.bad_readings == 0


def test_epoch_times_and_timestamps_date_the_windows_themselves(tmp_path: Path) -> None:
    start = datetime(2024, 6, 1, 12, tzinfo=UTC)
    seconds = _recording(0.5)
    stamped = seconds.set_column(
        0, "time", pa.array([start + timedelta(milliseconds=i) for i in range(500)])
    )
    epoch = seconds.set_column(0, "t", pa.array(start.timestamp() + np.arange(500) / 1000))

    from_stamps = windows(stamped, SPEC, recorded_at=RECORDED_AT)
    from_epoch = windows(epoch, SPEC, recorded_at=RECORDED_AT)

    assert from_stamps.times == from_epoch.times
    assert from_stamps.times[0] == start + timedelta(seconds=0.25)


def test_readings_that_are_not_numbers_are_counted_and_read_as_zero() -> None:
    table = _recording(0.5)
    broken = table.set_column(1, SENSORS[0], pa.array([None] * 3 + [1.0] * 497, pa.float32()))

    cut = windows(broken, SPEC, recorded_at=RECORDED_AT)

    assert cut.bad_readings == 3
    assert np.isfinite(cut.features).all()


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        (_recording(1, drop=SENSORS[1]), f"no column '{SENSORS[1]}' (a sensor of the spec)"),
        (_recording(1).drop_columns(["t"]), "no column 't' (the time, named t or time)"),
        (_recording(1, rate_hz=500), "steps by 0.002 s (500 Hz) but the spec samples at 1000 Hz"),
        (_recording(0.1), "100 readings make no window of 250"),
    ],
)
def test_a_recording_the_spec_cannot_cut_is_refused_with_the_reason(
    table: pa.Table, reason: str
) -> None:
    with pytest.raises(RecordingError, match=re.escape(reason)):
        windows(table, SPEC, recorded_at=RECORDED_AT)


def test_a_missing_column_error_lists_the_columns_the_file_has(tmp_path: Path) -> None:
    path = tmp_path / "rec.parquet"
    pq.write_table(_recording(1, drop=SENSORS[2]), path)
    spec = tmp_path / "spec.json"
    spec.write_text(SPEC.model_dump_json())

    status, output = _import(tmp_path, str(path), "--label", "worn", "--spec", str(spec))

    assert status == 2
    assert f"no column '{SENSORS[2]}'" in output
    assert f"its columns: t, {SENSORS[0]}, {SENSORS[1]}" in output


@pytest.mark.parametrize(
    ("name", "content", "args", "reason"),
    [
        ("rec.parquet", b"not parquet", [], "cannot read"),
        ("rec.xlsx", b"", [], "unknown format '.xlsx'; give a .csv or .parquet file"),
        ("absent.csv", None, [], "cannot read"),
        ("rec.csv", b"t,x\n0,1\n", ["--label", "Not Valid"], "--label 'Not Valid': String"),
        ("rec.csv", b"t,x\n0,1\n", ["--dataset", "a b"], "--dataset 'a b': String"),
        ("rec.csv", b"t,x\n0,1\n", ["--spec", "SPEC"], "is not an InputSpec"),
    ],
)
def test_import_refuses_bad_input_before_calling_the_hub(
    tmp_path: Path, name: str, content: bytes | None, args: list[str], reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    (tmp_path / "SPEC").write_text('{"sensors": []}')
    args = [str(tmp_path / a) if a == "SPEC" else a for a in args]
    if "--label" not in args:
        args += ["--label", "worn"]

    status, output = _import(tmp_path, str(path), *args)

    assert status == 2
    assert reason in output


def test_read_recording_reads_csv_and_parquet_alike(tmp_path: Path) -> None:
    table = _recording(0.3)
    pq.write_table(table, tmp_path / "rec.parquet")
    (tmp_path / "rec.csv").write_text(table.to_pandas().to_csv(index=False))

    parquet = read_recording(tmp_path / "rec.parquet")
    csv = read_recording(tmp_path / "rec.csv")

    assert parquet.column_names == csv.column_names == ["t", *SENSORS]
    assert np.allclose(parquet["t"].to_numpy(), csv["t"].to_numpy())
