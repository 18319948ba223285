"""Labelled cases read from files: a long table, a folder of label folders, or one recording."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError

from edgestack.protocol import Label, Split

__all__ = [
    "KEY_COLUMNS",
    "SUFFIXES",
    "TIME_COLUMNS",
    "Case",
    "CaseError",
    "Cases",
    "read_cases",
]

TIME_COLUMNS = ("t", "time", "timestamp")
"""The names the time column may have: `t` and `time` in seconds (or timestamps), `timestamp`
in milliseconds as Edge Impulse writes its CSV files (or timestamps)."""
KEY_COLUMNS = ("case", "label", "split", *TIME_COLUMNS)
"""The columns of a long table that are no channel."""
SUFFIXES = (".csv", ".parquet", ".pq")
"""The files read: CSV and Parquet."""

_SPLIT_FOLDERS: dict[str, Split] = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
}
_LABEL: TypeAdapter[str] = TypeAdapter(Label)
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
    return _numbers(path, table, name) / (1000.0 if name == "timestamp" else 1.0)


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
