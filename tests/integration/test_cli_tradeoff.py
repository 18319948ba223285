"""`edgestack tradeoff` against a real hub process."""

import json
from pathlib import Path

import pytest

from edgestack.demo import LocalFleet, wait_until

from .test_cli import cli
from .test_cli_train import _upload
from .test_event_stream import _enrol
from .test_jobs import _job

pytestmark = pytest.mark.integration


def test_tradeoff_measures_each_policy_on_the_models_held_out_windows(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        _enrol(fleet, "edge-1")
        _upload(fleet, "motors")
        small = cli(
            fleet, "train", "motors", "--model", "decision_tree", "--params", '{"max_depth": 2}'
        )
        big = cli(fleet, "train", "motors", "--model", "random_forest")
        asked = ["tradeoff", "motors@1", "--device", "edge-1", "--cloud", "motors@2"]
        asked += ["--fractions", "0.1,0.5", "--bandwidth", "50", "--json"]
        measured = cli(fleet, *asked)
        queued = cli(fleet, *asked, "--job")
        job_id = json.loads(queued.stdout)["id"]
        by_job = wait_until(
            lambda: _job(fleet, job_id, "succeeded", "failed"),
            timeout_s=120,
            what=f"tradeoff job {job_id} to end",
            every_s=0.5,
        )
        shown = cli(fleet, "jobs", "show", str(job_id))
        table = cli(fleet, "tradeoff", "motors@1", "--device", "edge-1", "--cloud", "motors@2")
        no_server = cli(fleet, "tradeoff", "motors", "--device", "edge-1")
        no_device = cli(fleet, "tradeoff", "motors", "--device", "edge-9", "--cloud", "motors")
        bad_share = cli(fleet, "tradeoff", "motors", "--device", "edge-1", "--fractions", "0,1")

    assert small.returncode == 0 and big.returncode == 0, small.stdout + big.stdout
    assert measured.returncode == 0, measured.stdout + measured.stderr
    summary = json.loads(measured.stdout)
    assert summary["profile"] == "mcu"  # what edge-1's hardware puts it in
    assert (summary["model"]["version"], summary["cloud"]["version"]) == (1, 2)
    assert summary["dataset"] == "motors" and summary["rows"] > 0
    choices = {c["policy"]: c for c in summary["choices"]}
    assert list(choices) == [
        "device only",
        "joint 10% (confidence)",
        "joint 50% (confidence)",
        "cloud only",
    ]
    alone, remote = choices["device only"], choices["cloud only"]
    assert (alone["offload_fraction"], alone["uplink_bytes"]) == (0.0, 0.0)
    assert remote["offload_fraction"] == 1.0 and remote["uplink_bytes"] > 0
    # a window's features at 50 kB/s: the wire alone takes longer than the round trip
    assert remote["latency_ms"] > 30 + remote["uplink_bytes"] / 50
    for share in ("joint 10% (confidence)", "joint 50% (confidence)"):
        joint = choices[share]
        assert joint["uplink_bytes"] == pytest.approx(
            joint["offload_fraction"] * remote["uplink_bytes"]
        )
        assert 0 < joint["offload_fraction"] <= 1
    # The worker measures as the command does: the same windows, the same decisions.
    assert by_job.state == "succeeded", by_job.error
    assert by_job.result is not None and by_job.job.kind == "tradeoff"
    assert [
        (c["policy"], c["accuracy"], c["offload_fraction"]) for c in by_job.result["choices"]
    ] == [(c["policy"], c["accuracy"], c["offload_fraction"]) for c in summary["choices"]]
    assert by_job.result["link"] == {"bandwidth_kb_s": 50.0, "rtt_ms": 30.0}
    assert f"4 policies measured on {summary['rows']} rows" in shown.stdout, shown.stdout
    assert table.returncode == 0, table.stdout + table.stderr
    assert "joint 20% (confidence)" in table.stdout and "on edge-1 (mcu)" in table.stdout
    assert no_server.returncode == 2
    assert "--cloud: device 'edge-1' has no offload policy" in no_server.stdout
    assert no_device.returncode == 1 and "edge-9" in no_device.stdout
    assert bad_share.returncode == 2 and "--fractions: 0.0 is no share" in bad_share.stdout
