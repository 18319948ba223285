"""`edgestack export --target c` against a real hub process: the C it writes, compiled here,
decides as the Python pipeline does on the raw windows the model was trained on."""

import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from edgestack.bundle import Bundle, FeatureSpec
from edgestack.demo import LocalFleet
from edgestack.learning.mcu import CBuild, python_features
from edgestack.predictor import OnnxPredictor
from edgestack.processing import make_spec
from edgestack.profiles import PROFILES
from edgestack.protocol import DataSample, SampleImport

from .test_cli import bare_env, cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("cc") is None or shutil.which("size") is None,
        reason="no C compiler: sudo apt-get install gcc binutils",
    ),
]

SPEC = make_spec(
    ["ax", "ay"],
    800.0,
    64,
    64,
    extractors=[
        FeatureSpec(kind="time_stats"),
        FeatureSpec(kind="band_energies", params={"bands": 4}),
        FeatureSpec(kind="mean", channels=["ay"]),
    ],
)
LABELS = ["loose", "normal", "worn"]


def _raw_windows(count: int) -> tuple[np.ndarray, list[str]]:
    """Windows of a small machine: each state hums at its own tone under noise."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, len(LABELS), count)
    t = np.arange(SPEC.window) / SPEC.rate_hz
    tone = np.array([60.0, 150.0, 330.0])[y][:, None, None]
    windows = rng.uniform(0.5, 2, (count, 2, 1)) * np.sin(2 * np.pi * tone * t)
    windows += rng.normal(0, 0.8, (count, 2, SPEC.window))
    return windows.astype(np.float32), [LABELS[k] for k in y]


def _export(fleet: LocalFleet, *args: str) -> subprocess.CompletedProcess[str]:
    """`edgestack export`, finding the host's C tools where this process finds them."""
    tools = {str(Path(shutil.which(tool) or "").parent) for tool in ("cc", "size")}
    return subprocess.run(
        [sys.executable, "-m", "edgestack", "export", *args, "--hub", fleet.hub_url],
        capture_output=True,
        text=True,
        timeout=120,
        env=bare_env(EDGESTACK_ADMIN_TOKEN=fleet.admin_token, PATH=os.pathsep.join(tools)),
    )


def test_a_forest_exports_to_c_that_decides_as_the_pipeline_on_every_window_and_fits_mcu(
    tmp_path: Path,
) -> None:
    windows, labels = _raw_windows(150)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    samples = [
        DataSample(at=start + timedelta(seconds=i), label=label, features=row.tolist())
        for i, (row, label) in enumerate(zip(python_features(SPEC, windows), labels, strict=True))
    ]
    out = tmp_path / "firmware"
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        fleet.client.import_samples(
            "vib", SampleImport(batch_id=uuid.uuid4(), spec=SPEC, samples=samples)
        )
        fleet.client.freeze("vib")
        trained = cli(
            fleet, "train", "vib", "--model", "random_forest", "--params", '{"n_estimators": 10}'
        )
        exported = _export(fleet, "vib@1", "--target", "c", "--out", str(out), "--json")
        again = _export(fleet, "vib", "--target", "c", "--out", str(out))
        wrong = _export(fleet, "vib@1", "--target", "wasm", "--out", str(out))
        evaluated = cli(fleet, "evaluate", "vib")
        linear = cli(fleet, "train", "vib", "--model", "logistic_regression", "--name", "lin")
        no_c = _export(fleet, "lin", "--target", "c", "--out", str(tmp_path / "lin"))
        models = [m for m in fleet.client.models() if m.name == "vib"]
        bundles = [Bundle.unpack(fleet.client.bundle(m.digest)) for m in models]

    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert exported.returncode == 0, exported.stdout + exported.stderr
    (parent, c_model), (onnx_bundle, c_bundle) = models, bundles
    onnx = onnx_bundle.model
    summary = json.loads(exported.stdout)
    assert summary["registered"]["version"] == c_model.version == 2
    assert {Path(f).name for f in summary["files"]} >= {"edgestack_model.h", "edgestack_model.c"}
    manifest = c_bundle.manifest
    assert manifest.target == "c"
    assert manifest.lineage is not None and manifest.lineage.parent == parent.digest
    assert manifest.input == parent.manifest.input
    footprint = manifest.footprint
    assert footprint is not None
    assert footprint.model_bytes == summary["flash_bytes"] > 0
    assert PROFILES["mcu"].refuses(footprint) == []
    written = {path.name: path.read_text() for path in out.iterdir()}
    in_c = CBuild(written, tmp_path).predict(windows)  # what was written, compiled here
    in_python, _ = OnnxPredictor(onnx, parent.manifest.labels).predict(
        python_features(SPEC, windows)
    )
    assert np.array_equal(in_c, in_python)
    refusal = "vib v2 is C for a microcontroller and {} runs ONNX models"
    assert again.returncode == 1 and refusal.format("export") in again.stdout
    assert evaluated.returncode == 1 and refusal.format("evaluate") in evaluated.stdout
    assert linear.returncode == 0, linear.stdout + linear.stderr
    assert no_c.returncode == 1
    assert "lin v1 is logistic_regression; the C target exports models trained with" in no_c.stdout
    assert not (tmp_path / "lin").exists()
    assert wrong.returncode == 2 and "--target: 'wasm'" in wrong.stdout
