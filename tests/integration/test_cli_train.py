"""`edgestack train` against a real hub process."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.image
import pytest

from edgestack.demo import LocalFleet
from edgestack.processing import vibration_spec
from edgestack.protocol import DataSample, SampleImport
from edgestack.sensing import FAULTS
from learning.motor import motor_features

from .test_cli import cli

pytestmark = pytest.mark.integration


def _upload(fleet: LocalFleet, dataset: str, normal: str = "normal") -> None:
    """The simulated motor's feature windows, labelled by fault (`normal` for no fault), as one
    frozen version."""
    x, faults = motor_features(seconds=4.0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    label = [normal if fault == "normal" else fault for fault in FAULTS]
    samples = [
        DataSample(at=start + timedelta(seconds=i / 4), label=label[k], features=row.tolist())
        for i, (row, k) in enumerate(zip(x, faults, strict=True))
    ]
    fleet.client.import_samples(
        dataset, SampleImport(batch_id=uuid.uuid4(), spec=vibration_spec(), samples=samples)
    )
    fleet.client.freeze(dataset)


def test_a_model_is_trained_on_a_dataset_version_and_registered_with_lineage(
    tmp_path: Path,
) -> None:
    png = tmp_path / "confusion.png"
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        _upload(fleet, "motors")

        trained = cli(
            fleet, "train", "motors", "--model", "decision_tree", "--cv", "3", "--png", str(png)
        )
        # The same data, trainer and seed make the same tree: the version it already is.
        same = cli(fleet, "train", "motors", "--model", "decision_tree", "--cv", "3")
        again = cli(
            fleet, "train", "motors", "--model", "logistic_regression", "--freeze", "--json"
        )
        unknown = cli(fleet, "train", "motors", "--model", "oracle")
        listed = cli(fleet, "models", "--json")
        table = cli(fleet, "models")

    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "registered motors v1" in trained.stdout
    assert "macro_f1" in trained.stdout and "bearing_wear" in trained.stdout
    assert same.returncode == 0, same.stdout + same.stderr
    assert "registered motors v1" in same.stdout
    assert again.returncode == 0, again.stdout + again.stderr
    summary = json.loads(again.stdout)
    assert summary["model"]["version"] == 2
    assert summary["metrics"]["accuracy"] >= 0.9
    assert unknown.returncode == 2
    assert "unknown trainer 'oracle'" in unknown.stdout
    first, second = json.loads(listed.stdout)
    manifest = first["manifest"]
    assert manifest["labels"] == sorted(FAULTS)
    assert manifest["input"]["features"] == vibration_spec().features
    assert manifest["lineage"]["trainer"] == "decision_tree"
    assert (manifest["lineage"]["dataset"], manifest["lineage"]["dataset_version"]) == (
        "motors",
        1,
    )
    assert manifest["metrics"]["accuracy"] >= 0.9
    assert "cv_macro_f1_mean" in manifest["metrics"]
    # Measured like an optimised model, so deployments check it against device profiles.
    footprint = manifest["footprint"]
    assert 0 < footprint["model_bytes"] < first["size_bytes"]
    assert 0 < footprint["latency_ms_p50"] <= footprint["latency_ms_p99"]
    assert second["manifest"]["lineage"]["trainer"] == "logistic_regression"
    assert second["manifest"]["lineage"]["dataset_version"] == 2  # the one --freeze made
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(png).ndim == 3
    assert "decision_tree on motors@1" in table.stdout
    assert "logistic_regression on motors@2" in table.stdout


def test_an_anomaly_detector_learns_the_apps_normal_label_as_normal(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(
        "name: quiet-motor\nsources: [{kind: motor}]\nwindow: 2048\nhop: 2048\n"
        "extractors: [{kind: time_stats}]\nrules: {normal_label: calm}\n"
    )
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        _upload(fleet, "calm-motors", normal="calm")

        default = cli(fleet, "train", "calm-motors", "--model", "isolation_forest")
        trained = cli(
            fleet, "train", "calm-motors", "--model", "isolation_forest", "--app", str(app)
        )
        listed = cli(fleet, "models", "--json")

    assert default.returncode == 2
    assert "0 rows of 'normal'" in default.stdout
    assert trained.returncode == 0, trained.stdout + trained.stderr
    [model] = json.loads(listed.stdout)
    assert model["manifest"]["labels"] == ["calm", "anomaly"]


def test_optimize_registers_the_best_candidate_that_fits_with_its_footprint_and_parent(
    tmp_path: Path,
) -> None:
    png = tmp_path / "pareto.png"
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        _upload(fleet, "motors")
        trained = cli(fleet, "train", "motors", "--model", "mlp")
        optimized = cli(fleet, "optimize", "motors", "--profile", "pi", "--png", str(png), "--json")
        tiny = cli(fleet, "optimize", "motors", "--version", "1", "--profile", "mcu")
        listed = cli(fleet, "models", "--json")

    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert optimized.returncode == 0, optimized.stdout + optimized.stderr
    report = json.loads(optimized.stdout)
    verdicts = {c["name"]: c for c in report["candidates"]}
    assert {"fp32", "fp16", "int8_dynamic", "int8_static"} <= set(verdicts)
    parent, best = json.loads(listed.stdout)
    lineage = best["manifest"]["lineage"]
    assert lineage["parent"] == parent["digest"]
    assert lineage["optimisation"] in verdicts
    # the same inputs as its parent, so the same training statistics to judge drift by
    assert parent["manifest"]["reference"]["rows"] > 0
    assert best["manifest"]["reference"] == parent["manifest"]["reference"]
    # calibrated afresh on the same held-out rows, for its accuracy estimated without labels
    calibrations = [m["manifest"]["calibration"] for m in (parent, best)]
    assert sum(calibrations[0]["rows"]) == sum(calibrations[1]["rows"]) > 0
    footprint = best["manifest"]["footprint"]
    assert 0 < footprint["model_bytes"] < best["size_bytes"]  # the model, inside its bundle
    assert footprint["peak_ram_bytes"] > 0
    assert 0 < footprint["latency_ms_p50"] <= footprint["latency_ms_p99"]
    gate = parent["manifest"]["metrics"]["accuracy"] - 0.01
    assert best["manifest"]["metrics"]["accuracy"] >= gate
    # Every model needs megabytes of RAM for ONNX Runtime itself: none fits a microcontroller.
    assert tiny.returncode == 1
    assert "mcu" in tiny.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
