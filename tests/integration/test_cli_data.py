"""`edgestack data` against a real hub process, and collection from a real agent."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edgestack.demo import LocalFleet, wait_until
from edgestack.processing import vibration_spec

from .test_cli import cli

pytestmark = pytest.mark.integration

SPEC = vibration_spec(rate_hz=1000.0, window=250, hop=250)


def _recording(seconds: float, seed: int) -> pd.DataFrame:
    n = int(seconds * SPEC.rate_hz)
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"t": np.arange(n) / SPEC.rate_hz} | {s: rng.normal(size=n) for s in SPEC.sensors}
    )


def test_imported_recordings_are_listed_shown_and_exported(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(SPEC.model_dump_json())
    _recording(2, seed=1).to_csv(tmp_path / "worn.csv", index=False)
    _recording(1, seed=2).to_parquet(tmp_path / "normal.parquet")
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()

        worn = cli(
            fleet,
            "data",
            "import",
            str(tmp_path / "worn.csv"),
            "--label",
            "worn",
            "--dataset",
            "bench",
            "--spec",
            str(spec),
        )
        normal = cli(
            fleet,
            "data",
            "import",
            str(tmp_path / "normal.parquet"),
            "--label",
            "normal",
            "--dataset",
            "bench",
            "--spec",
            str(spec),
        )
        listed = cli(fleet, "data", "list", "--json")
        table = cli(fleet, "data", "list")
        shown = cli(fleet, "data", "show", "bench", "--json")
        first = cli(fleet, "data", "show", "bench", "--version", "1", "--json")
        missing = cli(fleet, "data", "show", "bench", "--version", "7")
        as_parquet = cli(fleet, "data", "export", "bench", "--out", str(tmp_path / "b.parquet"))
        as_csv = cli(
            fleet, "data", "export", "bench", "--version", "1", "--out", str(tmp_path / "b1.csv")
        )

    assert worn.returncode == 0, worn.stdout + worn.stderr
    assert "bench v1: 8 samples" in worn.stdout
    assert normal.returncode == 0, normal.stdout + normal.stderr
    assert "bench v2: 12 samples" in normal.stdout
    [summary] = json.loads(listed.stdout)
    assert (summary["name"], summary["versions"], summary["latest"]) == ("bench", 2, 2)
    assert summary["counts"]["labels"] == {"normal": 4, "worn": 8}
    assert "bench" in table.stdout and "normal 4, worn 8" in table.stdout
    versions = json.loads(shown.stdout)["versions"]
    assert [v["counts"]["total"] for v in versions] == [8, 12]
    assert json.loads(first.stdout)["counts"]["devices"] == {"import": 8}
    assert missing.returncode == 1
    assert "has no version 7; its versions: v1, v2" in missing.stdout
    assert as_parquet.returncode == 0 and as_csv.returncode == 0, as_csv.stdout
    exported = pq.read_table(tmp_path / "b.parquet")
    assert exported.num_rows == 12
    assert exported.schema.field("at").type == pa.timestamp("us", tz="UTC")
    frame = pd.read_csv(tmp_path / "b1.csv")
    assert list(frame.columns) == ["device", "at", "label", "split", "spec", *SPEC.features]
    assert frame["label"].tolist() == ["worn"] * 8


def test_collect_gathers_a_real_agents_windows_then_freezes_them(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, ["edge-1"]) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        wait_until(
            lambda: [d for d in fleet.client.devices() if d.reported],
            timeout_s=60,
            what="the agent to report",
        )

        collected = cli(
            fleet,
            "data",
            "collect",
            "--device",
            "edge-1",
            "--label",
            "normal",
            "--seconds",
            "3",
            "--dataset",
            "line",
        )
        detail = fleet.client.dataset("line")
        desired = fleet.client.device("edge-1").desired

    assert collected.returncode == 0, collected.stdout + collected.stderr
    [version] = detail.versions
    assert "line v1:" in collected.stdout
    assert version.counts.labels == {"normal": version.counts.total}
    assert version.counts.devices == {"edge-1": version.counts.total}
    assert version.counts.total >= 5
    assert desired.collect is None
