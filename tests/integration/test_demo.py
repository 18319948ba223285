import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from conftest import interruptible
from edgestack.demo import DemoOptions, DriftReport, run_demo, wait_until

pytestmark = pytest.mark.integration


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    options = DemoOptions.quick(tmp_path / "demo")

    result = run_demo(options, Console(file=io.StringIO()))

    report = result.report
    assert report.devices == 3
    assert report.model.accuracy >= 0.95
    assert report.deployed == 3
    assert report.predictions > 0
    assert report.alarms, "the faulty device raised no alarm"
    assert {a.device for a in report.alarms} == {report.faulty_device}
    first = min(a.at for a in report.alarms)
    assert 0 <= (first - result.fault_at).total_seconds() <= 20
    assert report.raw_bytes / report.uplink_bytes >= 50


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "edgestack", "demo", "--quick", "--data-dir", str(tmp_path / "d")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "100"},
        preexec_fn=interruptible,
    )
    try:
        children = wait_until(
            lambda: c if len(c := _children(demo.pid)) == 4 else set(),
            timeout_s=60,
            what="the demo to start a hub and three agents",
        )

        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=30)

        assert code == 130
        assert not [pid for pid in children if _alive(pid)]
    finally:
        demo.kill()
        demo.wait()


def test_the_drift_scenario_alerts_rolls_a_bad_candidate_back_and_recovers(
    tmp_path: Path,
) -> None:
    report_file = tmp_path / "drift.json"

    finished = subprocess.run(
        [
            sys.executable, "-m", "edgestack", "demo", "--scenario", "drift", "--quick",
            "--report", str(report_file), "--data-dir", str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip

    assert finished.returncode == 0, finished.stdout[-3000:]
    report = DriftReport.model_validate_json(report_file.read_text())
    assert 0 < report.drift_alert_s <= 60
    shown = finished.stdout[-2000:]
    assert report.accuracy_before_shift - report.accuracy_after_update <= 0.02, shown
    # the pump hurt the first model: it is the retrained one that recovered
    assert report.accuracy_during_shift < report.accuracy_after_update
    assert report.bad_candidate_rolled_back
    assert report.rollout_waves_promoted >= 2
    assert report.metrics_scraped
