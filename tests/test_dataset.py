from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edgestack.bundle import FeatureSpec, InputSpec
from edgestack.dataset import DatasetFileError, read_dataset, write_dataset

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
