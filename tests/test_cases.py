"""Labelled data sets read from tables and folders, and cut into a spec's windows."""

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgestack.cases import CaseError, Cases, cut_cases, import_cut, raw_spec, read_cases
from edgestack.client import HubClient
from edgestack.processing import extractors_of, make_spec, vibration_spec

AT = datetime(2025, 3, 1, tzinfo=UTC)


def _long(path: Path, lengths: dict[str, int], **columns: object) -> Path:
    """A long table: case `name` of `n` readings on channels a and b, labelled by its first
    letter, in the split `columns` gives per case."""
    rows = []
    for name, n in lengths.items():
        for i in range(n):
            rows.append(
                {"case": name, "label": name[0], "a": i, "b": -i}
                | {
                    key: value[name]
                    for key, value in columns.items()  # type: ignore[index]
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_each_case_becomes_its_windows_keeping_its_label_and_split(tmp_path: Path) -> None:
    path = _long(
        tmp_path / "set.csv",
        {"x1": 16, "y1": 8, "x2": 8},
        split={"x1": "test", "y1": "train", "x2": "train"},
    )
    cases = read_cases(path, rate_hz=4.0)
    spec = make_spec(cases.channels, 4.0, 8, 4, extractors=extractors_of(["raw"], 8))

    cut = cut_cases(cases, spec, recorded_at=AT)

    assert cases.channels == ["a", "b"]
    assert cut.cases == ["x1", "x1", "x1", "y1", "x2"]
    assert cut.labels == ["x", "x", "x", "y", "x"]
    assert cut.splits == ["test", "test", "test", "train", "train"]
    assert cut.features[1, :8].tolist() == list(range(4, 12))  # a's second window
    assert cut.features[1, 8:].tolist() == [-v for v in range(4, 12)]
    assert cut.short == [] and cut.cropped == 0


def test_a_folder_of_label_folders_is_one_case_a_file_split_by_its_parent(
    tmp_path: Path,
) -> None:
    for split, label, name in [("train", "Worn Bearing", "a"), ("test", "normal", "b")]:
        folder = tmp_path / split / label
        folder.mkdir(parents=True)
        pd.DataFrame({"t": np.arange(8) / 8, "ax": np.arange(8.0)}).to_csv(
            folder / f"{name}.csv", index=False
        )
    (tmp_path / "README.txt").write_text("not data")

    cases = read_cases(tmp_path)

    assert cases.rate_hz == pytest.approx(8.0)
    assert [(c.name, c.label, c.split, c.data.shape) for c in cases.cases] == [
        ("test/normal/b.csv", "normal", "test", (1, 8)),
        ("train/Worn Bearing/a.csv", "Worn Bearing", "train", (1, 8)),
    ]


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({"loose.csv": "x\n1\n"}, "loose.csv: a file beside the label folders has no label"),
        ({"train/loose.csv": "x\n1\n"}, "loose.csv: a file beside the label folders"),
        ({"worn/a.csv": "label,x\nok,1\n"}, "a.csv: a file in a label folder takes its"),
        ({"worn/a.csv": "case,x\n1,1\n"}, "a.csv: a file in a label folder is one case"),
        ({"worn/a.txt": "x\n1\n"}, "no .csv or .parquet files in label folders"),
        ({"worn/a.csv": "x\n1\n", "ok/b.csv": "y\n1\n"}, "files with other channels"),
    ],
)
def test_a_folder_that_is_no_data_set_is_refused_naming_the_file(
    tmp_path: Path, files: dict[str, str], reason: str
) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)

    with pytest.raises(CaseError, match=re.escape(reason)):
        read_cases(tmp_path)


def test_edge_impulse_files_time_their_readings_in_milliseconds(tmp_path: Path) -> None:
    folder = tmp_path / "idle"
    folder.mkdir()
    folder.joinpath("idle.1.csv").write_text("timestamp,accX,accY\n0,1,2\n16,1,2\n32,1,2\n")

    cases = read_cases(tmp_path)

    assert cases.channels == ["accX", "accY"]
    assert cases.rate_hz == pytest.approx(62.5)


def test_split_and_label_given_once_mark_a_single_recording(tmp_path: Path) -> None:
    path = tmp_path / "rec.parquet"
    pq.write_table(pa.table({"t": np.arange(6) / 2, "x": np.ones(6)}), path)

    cases = read_cases(path, label="2", split="test")

    assert [(c.name, c.label, c.split) for c in cases.cases] == [("rec.parquet", "2", "test")]


@pytest.mark.parametrize(
    ("length", "windows", "last", "cropped"),
    [
        ("crop", 1, list(range(8)), 3),
        ("pad", 2, [4, 5, 6, 7, 8, 9, 10, 10], 0),
        ("resample", 2, np.linspace(0, 10, 12)[4:].tolist(), 0),
    ],
)
def test_a_case_between_whole_windows_is_fitted_as_length_says(
    tmp_path: Path, length: str, windows: int, last: list[float], cropped: int
) -> None:
    cases = read_cases(_long(tmp_path / "s.csv", {"c": 11}), rate_hz=1.0)
    spec = make_spec(["a"], 1.0, 8, 4, extractors=extractors_of(["raw"], 8))

    cut = cut_cases(cases, spec, length, recorded_at=AT)  # type: ignore[arg-type]

    assert len(cut.labels) == windows
    assert cut.features[-1] == pytest.approx(last, abs=1e-5)
    assert cut.cropped == cropped


@pytest.mark.parametrize(("length", "kept"), [("crop", 1), ("pad", 2), ("resample", 2)])
def test_cases_shorter_than_a_window_are_named_and_dropped_only_when_cropped(
    tmp_path: Path, length: str, kept: int
) -> None:
    cases = read_cases(_long(tmp_path / "s.csv", {"long": 8, "short": 3}), rate_hz=1.0)
    spec = raw_spec(cases)

    cut = cut_cases(cases, spec, length, recorded_at=AT)  # type: ignore[arg-type]

    assert spec.window == 8 and spec.features[:2] == ["a.s0", "a.s1"]
    assert cut.short == ["short"]
    assert len(cut.labels) == kept


def test_epoch_times_and_timestamps_date_the_windows_themselves(tmp_path: Path) -> None:
    start = datetime(2024, 6, 1, 12, tzinfo=UTC)
    stamps = [start + timedelta(milliseconds=i) for i in range(500)]
    readings = np.random.default_rng(7).normal(size=500)
    pq.write_table(pa.table({"time": stamps, "x": readings}), tmp_path / "a.parquet")
    pq.write_table(
        pa.table({"t": start.timestamp() + np.arange(500) / 1000, "x": readings}),
        tmp_path / "b.parquet",
    )
    spec = make_spec(["x"], 1000.0, 250, 250, extractors=extractors_of(["time_stats"], 250))

    a = cut_cases(read_cases(tmp_path / "a.parquet", label="l"), spec, recorded_at=AT)
    b = cut_cases(read_cases(tmp_path / "b.parquet", label="l"), spec, recorded_at=AT)

    assert a.times == b.times == [start + timedelta(seconds=0.25 * (i + 1)) for i in range(2)]


def test_cases_without_dates_follow_each_other_from_the_import(tmp_path: Path) -> None:
    cases = read_cases(_long(tmp_path / "s.csv", {"c1": 4, "c2": 4}), rate_hz=2.0)
    spec = make_spec(["a"], 2.0, 4, 4, extractors=extractors_of(["raw"], 4))

    cut = cut_cases(cases, spec, recorded_at=AT)

    assert cut.times == [AT + timedelta(seconds=2), AT + timedelta(seconds=5)]


def test_readings_that_are_not_numbers_are_counted_and_read_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("t,x\n0,1\n0.5,\n1,nan\n1.5,2\n")
    spec = make_spec(["x"], 2.0, 4, 4, extractors=extractors_of(["raw"], 4))

    cut = cut_cases(read_cases(path, label="l"), spec, recorded_at=AT)

    assert cut.bad_readings == 2
    assert cut.features.tolist() == [[1.0, 0.0, 0.0, 2.0]]


@pytest.mark.parametrize(
    ("content", "options", "reason"),
    [
        ("case,x\n1,2\n", {}, "no label column; add one, or give --label"),
        ("case,label,x\n1,a,2\n", {"label": "b"}, "s.csv has a label column; leave --label"),
        ("case,label,split,x\n1,a,dev,2\n", {}, "column split, row 1: 'dev' is no split"),
        ("case,label,x\n1,a,2\n1,b,3\n", {}, "case '1' has rows of several labels"),
        ("case,label,x\n1,a,z\n", {}, "column 'x' holds string, not numbers"),
        ("case,label\n1,a\n", {}, "no channel columns beside case, label"),
        ('case,label,x\n1," a",2\n', {}, "' a' is no label: starts or ends with a space"),
        ("t,x\n0,1\n0,2\n", {"label": "l"}, "the time column does not increase"),
        ("t,x\n0,1\n1,2\n", {"label": "l", "rate_hz": 4.0}, "--rate: the time column steps"),
        ("case,label,x\n", {}, "holds no readings"),
        ("\x00\x01", {}, "s.csv: cannot read it: CSV parse error"),
    ],
)
def test_a_table_that_is_no_data_set_is_refused_naming_the_fix(
    tmp_path: Path, content: str, options: dict[str, object], reason: str
) -> None:
    path = tmp_path / "s.csv"
    path.write_text(content)

    with pytest.raises(CaseError, match=re.escape(reason)):
        read_cases(path, **options)  # type: ignore[arg-type]


def test_a_spec_the_files_cannot_feed_is_refused_naming_the_field(tmp_path: Path) -> None:
    cases = read_cases(_long(tmp_path / "s.csv", {"c": 8}), rate_hz=1.0)

    with pytest.raises(CaseError, match=r"sensors: the spec reads \['accel_x'"):
        cut_cases(cases, vibration_spec(rate_hz=1.0), recorded_at=AT)
    with pytest.raises(CaseError, match="rate_hz: the files are sampled at 1 Hz"):
        cut_cases(cases, vibration_spec(), recorded_at=AT)
    with pytest.raises(CaseError, match="--rate: the files have no time column"):
        raw_spec(Cases(cases.channels, None, cases.cases))
    with pytest.raises(
        CaseError,
        match=r"--window: windows of 100000 readings \(--window\) cannot be kept raw: .*65536",
    ):
        raw_spec(cases, window=100_000)


_CELLS = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["train", "test", "a", "Worn Bearing", "", " x", "\t", "1e9"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(
        st.sampled_from(["case", "label", "split", "t", "time", "x", "y"]),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    cells=st.lists(st.lists(_CELLS, min_size=5, max_size=5), max_size=12),
    window=st.integers(1, 6),
    length=st.sampled_from(["resample", "pad", "crop"]),
)
def test_any_table_gives_a_clear_error_or_a_valid_cut(
    tmp_path: Path, names: list[str], cells: list[list[object]], window: int, length: str
) -> None:
    path = tmp_path / "fuzz.csv"
    frame = pd.DataFrame([row[: len(names)] for row in cells], columns=names)
    frame.to_csv(path, index=False)

    try:
        cases = read_cases(path, label=None if "label" in names else "l", rate_hz=None)
        spec = raw_spec(Cases(cases.channels, cases.rate_hz or 1.0, cases.cases), window=window)
        cut = cut_cases(cases, spec, length, recorded_at=AT)  # type: ignore[arg-type]
    except CaseError as exc:
        event("refused")
        assert str(exc) and "Traceback" not in str(exc)
        return
    event("cut")
    assert cut.features.shape == (len(cut.labels), len(spec.features))
    assert np.isfinite(cut.features).all()
    assert len(cut.times) == len(cut.splits) == len(cut.cases) == len(cut.labels)


def test_an_import_uploads_in_few_batches_and_freezes_once_or_sends_nothing(
    tmp_path: Path,
) -> None:
    asked: list[tuple[str, str]] = []

    def hub(request: httpx.Request) -> httpx.Response:
        asked.append((request.method, request.url.path))
        if request.url.path.endswith("/versions"):
            counts = {"total": 3}
            version = {"version": 1, "frozen_at": AT.isoformat(), "spec": "s", "counts": counts}
            return httpx.Response(201, json=version)
        return httpx.Response(
            200, json={"batch_id": str(uuid.uuid4()), "accepted": 1, "duplicate": False}
        )

    cases = read_cases(_long(tmp_path / "s.csv", {"c": 6}), rate_hz=1.0)
    good = cut_cases(cases, raw_spec(cases, 2), recorded_at=AT)
    # A time no database holds, as a recording dated in seconds far from now could give.
    dated = replace(good, times=[*good.times[:2], datetime(1990, 1, 1, tzinfo=UTC)])

    with HubClient("http://hub", admin_token="t", transport=httpx.MockTransport(hub)) as client:
        version = import_cut(client, "Arrow Head", good)
        sent = list(asked)
        asked.clear()
        with pytest.raises(CaseError, match=r"case 'c': a window's at must lie between 2000"):
            import_cut(client, "Arrow Head", dated)

    assert version.version == 1
    assert sent == [
        ("POST", "/api/v1/datasets/Arrow Head/samples"),
        ("POST", "/api/v1/datasets/Arrow Head/versions"),
    ]
    assert asked == []
