"""Labelled data sets from files: cases read from a long table or a folder of files, and cut
into the windows of an input spec, each window keeping its case's label and split.

A long table (`.csv` or `.parquet`) has a row per reading: columns `case` and `label`, optional
`split` (`train` or `test`) and `t` (seconds), and one column per channel. A folder holds a
folder per label (`normal/a.csv`, `worn/b.csv`), each file one case, optionally inside `train/`
and `test/` folders; a single file without a `case` column is one case.

    cases = read_cases(Path("vowels.csv"), rate_hz=1.0)
    spec = raw_spec(cases, window=None)                 # raw windows of the longest case
    cut = cut_cases(cases, spec, length="resample")
    cut.features, cut.labels, cut.splits, cut.short     # rows, and the cases too short
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError

from edgestack.bundle import FeatureSpec, InputSpec
from edgestack.client import HubClient
from edgestack.processing import FeaturePipeline, make_spec
from edgestack.protocol import DataSample, DatasetVersion, Label, SampleImport, Split
from edgestack.sensing import Chunk

__all__ = [
    "KEY_COLUMNS",
    "SUFFIXES",
    "TIME_COLUMNS",
    "Case",
    "CaseError",
    "Cases",
    "Cut",
    "Length",
    "cut_cases",
    "import_cut",
    "raw_spec",
    "read_cases",
]

TIME_COLUMNS = ("t", "time")
"""The names the time column may have: seconds, or timestamps."""
KEY_COLUMNS = ("case", "label", "split", *TIME_COLUMNS)
"""The columns of a long table that are no channel."""
SUFFIXES = (".csv", ".parquet", ".pq")
"""The files read: CSV and Parquet."""
Length = Literal["resample", "pad", "crop"]
"""What fits a case whose length is not a whole number of hops after a window: `resample`
it to the nearest such length, `pad` it with its last reading, or `crop` the readings after
its last whole window."""

_SPLIT_FOLDERS: dict[str, Split] = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
}
_LABEL: TypeAdapter[str] = TypeAdapter(Label)
# What one upload may carry: the hub takes 10,000 samples and 64 MiB a body; about 16 MiB
# of JSON (a feature is at most about 16 characters) keeps a batch well within both.
_BATCH_BYTES = 16 * 1024 * 1024
_BATCH_ROWS = 10_000
# The rates a time column may step at: a reading a day to a gigahertz.
_RATES = (1e-5, 1e9)
# Times above this many seconds are dates (1e9 s after the epoch is September 2001).
_EPOCH_SECONDS = 1e9


class CaseError(ValueError):
    """A file or folder that is no labelled data set; the message names the file, the column
    or the row, and the fix."""


@dataclass(frozen=True)
class Case:
    """One labelled recording: `data` is `(channels, n)` float32."""

    name: str
    label: str
    split: Split | None
    data: np.ndarray
    start: datetime | None = None
    rate_hz: float | None = None


@dataclass(frozen=True)
class Cases:
    """The cases of a data set, on `channels`, sampled at `rate_hz` when the files tell it."""

    channels: list[str]
    rate_hz: float | None
    cases: list[Case]


@dataclass(frozen=True)
class Cut:
    """Rows of `spec`'s features, one per window, with the label, split (None: the hub's) and
    case of each and the time its window ended; the cases shorter than a window (`short`, left
    out when cropped), readings cropped and readings that were no numbers (read as 0)."""

    spec: InputSpec
    features: np.ndarray
    labels: list[str]
    splits: list[Split | None]
    cases: list[str]
    times: list[datetime]
    short: list[str] = field(default_factory=list)
    cropped: int = 0
    bad_readings: int = 0


def read_cases(
    path: Path,
    *,
    label: str | None = None,
    split: Split | None = None,
    rate_hz: float | None = None,
) -> Cases:
    """The cases in `path`: a long table, a single recording (one case, labelled `label`) or a
    folder of label folders. `split` marks every case that no `split` column or folder marks;
    `rate_hz` is needed where no `t` column gives the rate."""
    if label is not None:
        label = _label(label, "--label")
    if path.is_dir():
        if label is not None:
            raise CaseError(
                f"--label: {path} is a folder, labelled by its folders; leave --label out"
            )
        found = _folder(path, split)
    elif path.is_file():
        found = [_file(path, label, split)]
    else:
        raise CaseError(f"{path}: no such file or folder")
    cases = [case for cases in found for case in cases[1]]
    if not cases:
        raise CaseError(f"{path}: holds no readings; give a table with at least one row")
    channels = found[0][0]
    for file_channels, _ in found:
        if file_channels != channels:
            raise CaseError(
                f"{path}: files with other channels: {channels} and {file_channels}; give "
                "every file the same channel columns"
            )
    rates = [case.rate_hz for case in cases if case.rate_hz is not None]
    if rates and max(rates) > min(rates) * 1.01:
        raise CaseError(
            f"{path}: the time column steps at rates from {min(rates):g} to {max(rates):g} Hz; "
            "resample the cases to one rate"
        )
    if rates and rate_hz is not None and abs(rates[0] / rate_hz - 1) > 0.01:
        raise CaseError(
            f"--rate: the time column steps at {rates[0]:g} Hz, not {rate_hz:g}; leave --rate out"
        )
    rate_hz = rate_hz or (rates[0] if rates else None)
    return Cases(channels, rate_hz, cases)


def raw_spec(cases: Cases, window: int | None = None, hop: int | None = None) -> InputSpec:
    """A spec keeping every reading of each window on the cases' channels: windows of `window`
    readings (the longest case's length when left out) every `hop` (`window` when left out)."""
    if cases.rate_hz is None:
        raise CaseError(
            "--rate: the files have no time column to tell the rate; give --rate HZ (for cases "
            "without time any rate will do, e.g. --rate 1)"
        )
    size = window or max(case.data.shape[1] for case in cases.cases)
    try:
        return make_spec(
            cases.channels,
            cases.rate_hz,
            size,
            hop or size,
            extractors=[FeatureSpec(kind="raw", params={"size": size})],
        )
    except ValueError as exc:
        given = "--window" if window else "the longest case's length"
        raise CaseError(
            f"--window: windows of {size} readings ({given}) cannot be kept raw: {exc}; give "
            "a shorter --window"
        ) from None


def cut_cases(
    cases: Cases,
    spec: InputSpec,
    length: Length = "resample",
    *,
    recorded_at: datetime,
    progress: Callable[[int], None] = lambda done: None,
) -> Cut:
    """Each case fitted to a whole number of windows (`length` says how; a case shorter than a
    window is resampled or padded to one, or left out when cropped, and named in `short`) and
    run through `spec`'s pipeline as a device runs it. Cases whose times are no dates are
    dated one after the other, a second apart, from `recorded_at`. `progress` hears the cases
    done."""
    if cases.rate_hz is not None and abs(cases.rate_hz / spec.rate_hz - 1) > 0.01:
        raise CaseError(
            f"rate_hz: the files are sampled at {cases.rate_hz:g} Hz and the spec at "
            f"{spec.rate_hz:g} Hz; give a spec of their rate"
        )
    missing = [s for s in spec.sensors if s not in cases.channels]
    if missing:
        raise CaseError(
            f"sensors: the spec reads {missing}, which the files lack; their channels: "
            f"{', '.join(cases.channels)}"
        )
    rows = [cases.channels.index(s) for s in spec.sensors]
    try:
        pipeline = FeaturePipeline(spec)
    except ValueError as exc:
        raise CaseError(str(exc)) from None
    features, labels, splits, names, times = [], [], [], [], []
    short, cropped, bad = [], 0, 0
    start = recorded_at
    for done, case in enumerate(cases.cases, 1):
        data = case.data[rows]
        finite = np.isfinite(data)
        if not finite.all():
            bad += int((~finite).sum())
            data = np.where(finite, data, np.float32(0.0))
        n = data.shape[1]
        if n < spec.window:
            short.append(case.name)
        fitted = _fit(data, spec.window, spec.hop, length)
        cropped += n - fitted.shape[1] if length == "crop" and n >= spec.window else 0
        begin = case.start or start
        if fitted.shape[1]:
            pipeline.reset()  # cases are separate recordings: no window spans two
            chunk = Chunk(
                begin.timestamp(), spec.rate_hz, tuple(spec.sensors), ("",) * len(rows), fitted
            )
            try:
                got = pipeline.push(chunk)
            except ValueError as exc:
                raise CaseError(f"case {case.name!r}: {exc}") from None
            ends = (np.arange(len(got)) * spec.hop + spec.window) / spec.rate_hz
            features.append(got)
            labels += [case.label] * len(got)
            splits += [case.split] * len(got)
            names += [case.name] * len(got)
            times += [begin + timedelta(seconds=float(e)) for e in ends]
        start = max(start, begin) + timedelta(seconds=n / spec.rate_hz + 1)
        progress(done)
    matrix = np.concatenate(features) if features else np.empty((0, len(spec.features)))
    return Cut(spec, matrix, labels, splits, names, times, short, cropped, bad)


def import_cut(
    client: HubClient,
    dataset: str,
    cut: Cut,
    progress: Callable[[int], None] = lambda done: None,
) -> DatasetVersion:
    """Upload `cut`'s rows into `dataset` with their labels and splits, in as few batches as
    the hub takes, then freeze them once as its next version. `progress` hears rows sent."""
    if not len(cut.features):
        raise CaseError("no case makes a window; give a shorter --window, or --length pad")
    per_batch = max(1, min(_BATCH_ROWS, _BATCH_BYTES // (16 * len(cut.spec.features) + 200)))
    # Every sample checked before the first is sent, so a bad one uploads nothing.
    samples = [_sample(cut, i, row) for i, row in enumerate(cut.features.astype(float).tolist())]
    for begin in range(0, len(samples), per_batch):
        batch = samples[begin : begin + per_batch]
        client.import_samples(
            dataset, SampleImport(batch_id=uuid.uuid4(), spec=cut.spec, samples=batch)
        )
        progress(begin + len(batch))
    return client.freeze(dataset, spec=cut.spec.fingerprint())


def _sample(cut: Cut, i: int, row: list[float]) -> DataSample:
    try:
        return DataSample(at=cut.times[i], label=cut.labels[i], features=row, split=cut.splits[i])
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise CaseError(f"case {cut.cases[i]!r}: a window's {where} {message}") from None


def _fit(data: np.ndarray, window: int, hop: int, length: Length) -> np.ndarray:
    """`data` `(channels, n)` at a length that ends on a whole window."""
    n = data.shape[1]
    hops = max(0.0, (n - window) / hop)
    if length == "crop":
        return data[:, : window + hop * int(hops)] if n >= window else data[:, :0]
    if length == "pad":
        target = window + hop * int(np.ceil(hops))
        return np.pad(data, ((0, 0), (0, target - n)), mode="edge")
    target = window + hop * round(hops)
    if target == n:
        return data
    if n == 1:
        return np.repeat(data, target, axis=1)
    at = np.linspace(0, n - 1, target)
    return np.stack([np.interp(at, np.arange(n), row) for row in data]).astype(np.float32)


def _folder(root: Path, split: Split | None) -> list[tuple[list[str], list[Case]]]:
    """A folder per label, each file in it one case; a `train/` or `test/` folder above them
    gives their split."""
    found = []
    for entry in _folders(root):
        folder_split = _SPLIT_FOLDERS.get(entry.name.lower())
        if folder_split is not None and split is not None and folder_split != split:
            raise CaseError(f"--split {split}: {entry} holds the {folder_split} split")
        for folder in _folders(entry) if folder_split else [entry]:
            label = _label(folder.name, f"{folder}: the folder name")
            for file in sorted(folder.iterdir()):
                if file.is_file() and file.suffix.lower() in SUFFIXES:
                    case = file.relative_to(root).as_posix()
                    found.append(_file(file, label, folder_split or split, case=case))
    if not found:
        raise CaseError(
            f"{root}: no .csv or .parquet files in label folders; lay them out as "
            "<label>/<case>.csv, e.g. normal/a.csv and worn/b.csv"
        )
    return found


def _folders(parent: Path) -> list[Path]:
    """The folders in `parent`; a data file beside them, which no folder labels, is refused."""
    for entry in parent.iterdir():
        if entry.is_file() and entry.suffix.lower() in SUFFIXES:
            raise CaseError(
                f"{entry}: a file beside the label folders has no label; move it into the "
                "folder of its label"
            )
    return sorted(entry for entry in parent.iterdir() if entry.is_dir())


def _file(
    path: Path, label: str | None, split: Split | None, case: str | None = None
) -> tuple[list[str], list[Case]]:
    table = _read(path)
    columns = table.column_names
    if "case" in columns and case is not None:
        raise CaseError(f"{path}: a file in a label folder is one case; drop its case column")
    channels = [c for c in columns if c not in KEY_COLUMNS]
    if not channels:
        raise CaseError(
            f"{path}: no channel columns beside {', '.join(c for c in columns)}; give one "
            "column of readings per channel"
        )
    data = None
    if table.num_rows:
        # Readings beyond float32 become infinite, counted as bad and read as 0 when cut.
        with np.errstate(over="ignore"):
            data = np.stack([_numbers(path, table, c) for c in channels]).astype(np.float32)
    times = _seconds(path, table)
    if "label" in columns:
        if case is not None:
            raise CaseError(
                f"{path}: a file in a label folder takes its folder's label; drop its label column"
            )
        if label is not None:
            raise CaseError(f"--label: {path} has a label column; leave --label out")
        labels = [
            _label(v, f"{path}: column label, row {i + 1}") for i, v in _texts(table, "label")
        ]
    elif label is None:
        raise CaseError(f"{path}: no label column; add one, or give --label for the whole file")
    else:
        labels = [label] * table.num_rows
    splits = _splits(path, table, split)
    keys = [v for _, v in _texts(table, "case")] if "case" in columns else [case or path.name]
    order = _groups(keys, table.num_rows)
    cases = []
    for name, rows in order.items():
        first = rows[0]
        if any(labels[r] != labels[first] for r in rows):
            raise CaseError(f"{path}: case {name!r} has rows of several labels; give it one")
        if any(splits[r] != splits[first] for r in rows):
            raise CaseError(f"{path}: case {name!r} has rows of both splits; give it one")
        assert data is not None  # a case has rows
        case_times = None if times is None else times[rows]
        start, rate = _timing(path, name, case_times)
        cases.append(Case(name, labels[first], splits[first], data[:, rows], start, rate))
    return channels, cases


def _read(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CaseError(f"{path}: unknown format '{suffix}'; give a .csv or .parquet file")
    try:
        return pa_csv.read_csv(path) if suffix == ".csv" else pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        problem = " ".join(str(exc).split())
        raise CaseError(f"{path}: cannot read it: {problem}") from None


def _numbers(path: Path, table: pa.Table, name: str) -> np.ndarray:
    column = table[name]
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
        raise CaseError(
            f"{path}: column {name!r} holds {kind}, not numbers; give its readings as numbers"
        )
    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def _seconds(path: Path, table: pa.Table) -> np.ndarray | None:
    name = next((c for c in TIME_COLUMNS if c in table.column_names), None)
    if name is None:
        return None
    column = table[name]
    if pa.types.is_timestamp(column.type):
        micros = column.cast(pa.timestamp("us")).cast(pa.int64())
        return np.asarray(micros.to_numpy(zero_copy_only=False), dtype=np.float64) / 1e6
    return _numbers(path, table, name)


def _texts(table: pa.Table, name: str) -> list[tuple[int, str]]:
    column = table[name]
    if pa.types.is_floating(column.type):
        # Read as 1.0 by CSV when a column has gaps: integers stay integers.
        values = [None if v is None else f"{v:g}" for v in column.to_pylist()]
    else:
        values = pc.cast(column, pa.string()).to_pylist()
    return [(i, "" if v is None else v) for i, v in enumerate(values)]


def _splits(path: Path, table: pa.Table, split: Split | None) -> list[Split | None]:
    if "split" not in table.column_names:
        return [split] * table.num_rows
    if split is not None:
        raise CaseError(f"--split: {path} has a split column; leave --split out")
    allowed = get_args(Split)
    splits: list[Split | None] = []
    for i, value in _texts(table, "split"):
        if value not in allowed:
            raise CaseError(
                f"{path}: column split, row {i + 1}: {value!r} is no split; give train or test"
            )
        splits.append("train" if value == "train" else "test")
    return splits


def _groups(keys: Sequence[str], rows: int) -> dict[str, list[int]]:
    """Row numbers by case, cases in the order they first appear."""
    if len(keys) == 1:
        return {keys[0]: list(range(rows))} if rows else {}
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups


def _label(value: str, where: str) -> str:
    try:
        return _LABEL.validate_python(value)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise CaseError(f"{where}: {value[:80]!r} is no label: {message}") from None


def _timing(
    path: Path, case: str, times: np.ndarray | None
) -> tuple[datetime | None, float | None]:
    """When a case began (None unless `t` holds dates) and its rate (None without `t`)."""
    if times is None or not len(times):
        return None, None
    if not np.isfinite(times).all():
        raise CaseError(f"{path}: case {case!r}: the time column has missing times; fill them in")
    if len(times) > 1 and (np.diff(times) <= 0).any():
        raise CaseError(f"{path}: case {case!r}: the time column does not increase; sort by time")
    rate = float(1 / np.median(np.diff(times))) if len(times) > 1 else None
    if rate is not None and not _RATES[0] <= rate <= _RATES[1]:
        raise CaseError(
            f"{path}: case {case!r}: the time column steps at {rate:g} Hz; give times in "
            f"seconds, at {_RATES[0]:g} to {_RATES[1]:g} Hz"
        )
    first = float(times[0])
    # Times are seconds from the case's start unless they are dates.
    start = datetime.fromtimestamp(first, UTC) if _EPOCH_SECONDS <= first <= 1e11 else None
    return start, rate
