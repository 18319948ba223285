"""The dataset file: one frozen version of a hub dataset, as Parquet that pandas and pyarrow read.

Columns `device`, `at` (UTC), `label`, `split` (`train`/`test`), `spec` (the input spec's
fingerprint), then one float32 column per feature in the spec's order; the `InputSpec` itself,
as JSON, under the schema metadata key `edgestack.spec`. The hub writes it; training and
optimisation read it.

    table = read_dataset(client.dataset_parquet("motors", 3))
    table.features, table.labels, table.test    # (n, F) float32, n labels, (n,) bool

A version imported with a raw spec (the `raw` extractor: every reading of each window) serves
any model of its sensors, rate and window: `features_for` computes the model's features from
the raw windows with the code a device runs.
"""

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from edgestack.bundle import InputSpec

__all__ = [
    "COLUMNS",
    "SPEC_KEY",
    "DatasetFileError",
    "DatasetTable",
    "SpecMismatch",
    "features_for",
    "raw_shape",
    "read_dataset",
    "write_dataset",
]

COLUMNS = ("device", "at", "label", "split", "spec")
"""The columns before the features."""
SPEC_KEY = b"edgestack.spec"
"""The schema metadata key holding the `InputSpec` as JSON."""


class DatasetFileError(ValueError):
    """A file that is no dataset version; the message says what is missing."""


class SpecMismatch(ValueError):
    """A model's spec whose rows a dataset version cannot give; the message names the field
    that differs and the fix."""


@dataclass(frozen=True)
class DatasetTable:
    """A version's spec, its rows `(n, len(spec.features))` float32, and per row its label,
    whether it is held out (the `test` split) and the device it came from."""

    spec: InputSpec
    features: np.ndarray
    labels: list[str]
    test: np.ndarray
    devices: list[str]


def write_dataset(
    path: Path, spec: InputSpec, fingerprint: str, rows: Iterable[Sequence[Any]]
) -> None:
    """Write rows `(device, at, label, split, features)` atomically to `path`."""
    devices, times, labels, splits, features = (list(column) for column in zip(*rows, strict=True))
    matrix = np.asarray(features, dtype=np.float32).reshape(len(devices), len(spec.features))
    columns = {
        "device": pa.array(devices, pa.string()),
        "at": pa.array(times, pa.timestamp("us", tz="UTC")),
        "label": pa.array(labels, pa.string()),
        "split": pa.array(splits, pa.string()),
        "spec": pa.array([fingerprint] * len(devices), pa.string()),
        **{feature: pa.array(matrix[:, j]) for j, feature in enumerate(spec.features)},
    }
    table = pa.table(columns).replace_schema_metadata({SPEC_KEY: spec.model_dump_json().encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so a crash never leaves half a version where a reader looks.
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial)
    os.replace(partial, path)


def read_dataset(data: bytes) -> DatasetTable:
    """The spec, feature rows, labels and held-out marks of a dataset version's file."""
    try:
        table = pq.read_table(io.BytesIO(data), use_threads=False)  # small: one thread
    except pa.ArrowInvalid as exc:
        raise DatasetFileError(f"not a Parquet file: {exc}") from None
    raw_spec = (table.schema.metadata or {}).get(SPEC_KEY)
    if raw_spec is None:
        raise DatasetFileError("the file carries no input spec; freeze the dataset again")
    try:
        spec = InputSpec.model_validate_json(raw_spec)
    except ValidationError as exc:
        raise DatasetFileError(f"the input spec is not valid: {exc.errors()[0]['msg']}") from None
    missing = [c for c in (*COLUMNS, *spec.features) if c not in table.column_names]
    if missing:
        raise DatasetFileError(f"the file lacks columns {missing[:5]}; freeze the dataset again")
    features = np.column_stack([table.column(f).to_numpy() for f in spec.features])
    return DatasetTable(
        spec=spec,
        features=features.astype(np.float32),
        labels=table.column("label").to_pylist(),
        test=np.asarray(table.column("split").to_pylist()) == "test",
        devices=table.column("device").to_pylist(),
    )


def raw_shape(spec: InputSpec) -> tuple[int, int] | None:
    """`(channels, window)` when `spec` keeps every reading of its windows, channel by
    channel (one `raw` extractor over all its sensors); None for any other spec."""
    if len(spec.extractors) != 1:
        return None
    (extractor,) = spec.extractors
    if extractor.kind != "raw" or extractor.channels not in (None, spec.sensors):
        return None
    return len(spec.sensors), spec.window


def features_for(table: DatasetTable, spec: InputSpec) -> np.ndarray:
    """`table`'s rows as a model of `spec` takes them: its own when `spec` is the table's;
    computed from its raw windows by `spec`'s extractors, as a device computes them, when the
    table is raw and `spec` has its sensors, rate, window and steps. `SpecMismatch` names
    the field that differs otherwise.

        rows = features_for(table, model.manifest.input)   # what the model takes
    """
    if spec == table.spec:
        return table.features
    shape = raw_shape(table.spec)
    if shape is None:
        raise SpecMismatch(
            f"extractors: the model's spec ({spec.fingerprint()}) is not the data set's "
            f"({table.spec.fingerprint()}), which keeps features, not raw windows, to compute "
            "others from; import the data without --spec to keep raw windows"
        )
    for field in ("sensors", "rate_hz", "window", "steps"):
        mine, theirs = getattr(spec, field), getattr(table.spec, field)
        if mine != theirs:
            raise SpecMismatch(
                f"{field}: the model's spec has {_short(mine)}, the data set's raw windows "
                f"{_short(theirs)}; train on a data set of the model's {field}"
            )
    if any(step.kind == "resample" for step in spec.steps):
        raise SpecMismatch(
            "steps: a resample step changes the rate the raw windows were kept at; import "
            "the data with the model's spec instead"
        )
    # Imported here: the extractors pull in what reading a file never needs.
    from edgestack.processing import FeaturePipeline

    windows = table.features.reshape(len(table.features), *shape)
    windows.flags.writeable = False
    try:
        return FeaturePipeline(spec).extract(windows, spec.rate_hz)
    except ValueError as exc:
        raise SpecMismatch(str(exc)) from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
