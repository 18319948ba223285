"""`edgestack data relabel` and `remove` against a real hub process."""

import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from edgestack.demo import LocalFleet
from edgestack.processing import vibration_spec
from edgestack.protocol import DataSample, SampleImport

from .test_cli import cli

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 1, tzinfo=UTC)


def _labels(fleet: LocalFleet, version: int) -> list[str]:
    table = pq.read_table(io.BytesIO(fleet.client.dataset_parquet("pumps", version)))
    return [str(label) for label in table["label"].to_pylist()]


def test_samples_are_relabelled_and_removed_each_time_as_a_new_version(tmp_path: Path) -> None:
    spec = vibration_spec()
    samples = [
        DataSample(
            at=START + timedelta(minutes=i),
            label="normal",
            features=[float(i)] * len(spec.features),
        )
        for i in range(6)
    ]
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        fleet.client.import_samples(
            "pumps", SampleImport(batch_id=uuid.uuid4(), device_id="p1", spec=spec, samples=samples)
        )
        fleet.client.freeze("pumps")

        relabelled = cli(
            fleet,
            "data",
            "relabel",
            "pumps",
            "--to",
            "worn",
            "--since",
            "2025-03-01T00:04:00",
            "--until",
            "2025-03-01T01:00:00+00:00",
        )
        ids = [s.id for s in fleet.client.samples(device="p1").samples]
        removed = cli(fleet, "data", "remove", "pumps", "--id", str(ids[0]), "--id", str(ids[1]))
        nothing = cli(fleet, "data", "remove", "pumps", "--label", "broken")
        unselected = cli(fleet, "data", "remove", "pumps")

        assert relabelled.returncode == 0, relabelled.stdout + relabelled.stderr
        assert "2 samples relabelled worn" in relabelled.stdout
        assert "pumps v2: 6 samples" in relabelled.stdout
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert "2 samples removed" in removed.stdout
        assert "pumps v3: 4 samples" in removed.stdout
        assert _labels(fleet, 1) == ["normal"] * 6
        assert _labels(fleet, 2) == ["normal"] * 4 + ["worn"] * 2
        assert _labels(fleet, 3) == ["normal"] * 2 + ["worn"] * 2
        assert nothing.returncode == 1
        assert "no samples of dataset 'pumps' match the selection (label broken)" in " ".join(
            nothing.stdout.split()
        )
        assert unselected.returncode == 2
        assert "select the samples with --device" in unselected.stdout
        assert len(fleet.client.dataset("pumps").versions) == 3
