from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edgestack.bundle import FeatureSpec, InputSpec
from edgestack.dataset import (
    DatasetFileError,
    DatasetTable,
    SpecMismatch,
    features_for,
    raw_shape,
    read_dataset,
    write_dataset,
)
from edgestack.processing import FeaturePipeline, extractors_of, make_spec
from edgestack.sensing import Chunk

SPEC = InputSpec(
    sensors=["x"],
    rate_hz=100.0,
    window=8,
    hop=8,
    extractors=[FeatureSpec(kind="time_stats", params={"stats": ["mean", "max"]})],
    features=["x.mean", "x.max"],
)


def test_a_written_version_reads_back_as_rows_labels_and_held_out_marks(tmp_path: Path) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        ("m-1", at, "ok", "train", [1.0, 2.0]),
        ("m-2", at, "worn", "test", [3.0, 4.5]),
    ]
    write_dataset(tmp_path / "v1.parquet", SPEC, SPEC.fingerprint(), rows)

    table = read_dataset((tmp_path / "v1.parquet").read_bytes())

    assert table.spec == SPEC
    assert table.features.dtype == np.float32
    assert table.features.tolist() == [[1.0, 2.0], [3.0, 4.5]]
    assert table.labels == ["ok", "worn"]
    assert table.test.tolist() == [False, True]
    assert table.devices == ["m-1", "m-2"]
    assert not list(tmp_path.glob("*.partial"))


def test_files_that_are_no_dataset_version_are_refused_saying_why(tmp_path: Path) -> None:
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"label": ["ok"]}), plain)

    with pytest.raises(DatasetFileError, match="not a Parquet file"):
        read_dataset(b"label,x\nok,1\n")
    with pytest.raises(DatasetFileError, match="no input spec"):
        read_dataset(plain.read_bytes())


SENSORS = ["ax", "ay", "az"]
RAW = make_spec(SENSORS, 100.0, 32, 32, extractors=extractors_of(["raw"], 32))
STATS = make_spec(
    SENSORS, 100.0, 32, 32, extractors=extractors_of(["time_stats", "band_energies"], 32)
)


def _stream() -> Chunk:
    rng = np.random.default_rng(3)
    t = np.arange(32 * 5) / 100.0
    data = np.stack([np.sin(2 * np.pi * f * t) + rng.normal(0, 0.3, t.size) for f in (3, 11, 29)])
    return Chunk(0.0, 100.0, tuple(SENSORS), ("g",) * 3, data.astype(np.float32))


def _table(spec: InputSpec, rows: np.ndarray) -> DatasetTable:
    n = len(rows)
    return DatasetTable(spec, rows, ["a"] * n, np.zeros(n, bool), ["import"] * n)


def test_features_from_raw_windows_are_what_the_device_computes_from_the_stream() -> None:
    raw_rows = FeaturePipeline(RAW).push(_stream())
    on_device = FeaturePipeline(STATS).push(_stream())

    computed = features_for(_table(RAW, raw_rows), STATS)

    assert raw_shape(RAW) == (3, 32) and raw_shape(STATS) is None
    assert computed.shape == on_device.shape == (5, len(STATS.features))
    np.testing.assert_allclose(computed, on_device, rtol=1e-5, atol=1e-6)
    assert features_for(_table(RAW, raw_rows), RAW) is raw_rows


@pytest.mark.parametrize(
    ("table_spec", "model_spec", "reason"),
    [
        (RAW, STATS.model_copy(update={"window": 64}), "window: the model's spec has 64"),
        (RAW, STATS.model_copy(update={"sensors": ["ax"]}), "sensors: the model's spec has"),
        (RAW, STATS.model_copy(update={"rate_hz": 50.0}), "rate_hz: the model's spec has 50.0"),
        (STATS, RAW, "extractors: the model's spec"),
    ],
)
def test_rows_a_table_cannot_give_are_refused_naming_the_field(
    table_spec: InputSpec, model_spec: InputSpec, reason: str
) -> None:
    table = _table(table_spec, np.zeros((2, len(table_spec.features)), np.float32))

    with pytest.raises(SpecMismatch, match=reason):
        features_for(table, model_spec)
