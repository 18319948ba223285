"""The C export: window features and models compiled with the host's C compiler must give
what the Python pipeline (the `processing` extractors, then the ONNX model) gives."""

import ast
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgestack.bundle import FeatureSpec, InputSpec, StageSpec
from edgestack.learning import TRAINERS, OnnxPredictor
from edgestack.learning.mcu import (
    CBuild,
    ExportError,
    c_sources,
    export_c,
    features_c,
    probe_windows,
    python_features,
)
from edgestack.learning.mcu.build import SOURCE
from edgestack.processing import make_spec
from edgestack.profiles import PROFILES

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None or shutil.which("size") is None,
    reason="no C compiler: sudo apt-get install gcc binutils",
)

STATS = ["mean", "min", "max", "rms", "peak", "crest", "kurtosis", "skewness"]
LABELS = ["hum", "rattle", "whine"]


def _spec(window: int, *, raw: bool = False) -> InputSpec:
    extractors = [
        FeatureSpec(kind="time_stats", params={"stats": STATS}),
        FeatureSpec(kind="band_energies", params={"bands": 6}, channels=["ax"]),
        FeatureSpec(kind="band_energies", params={"bands": 3, "scale": "linear"}),
        FeatureSpec(kind="mean", channels=["temp"]),
        FeatureSpec(kind="dominant_frequency", channels=["ay"]),
        FeatureSpec(kind="spectral_centroid"),
    ]
    if raw:
        extractors.append(FeatureSpec(kind="raw", params={"size": window}, channels=["ay"]))
    return make_spec(["ax", "ay", "temp"], 1000.0, window, window, extractors=extractors)


def _windows(spec: InputSpec, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labelled windows of a machine whose fault sets the tone of its vibration."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(LABELS), count)
    t = np.arange(spec.window) / spec.rate_hz
    tone = np.array([40.0, 130.0, 310.0])[y][:, None, None]
    windows = rng.uniform(0.5, 2, (count, 3, 1)) * np.sin(2 * np.pi * tone * t)
    windows += rng.normal(0, 0.6, (count, 3, spec.window))
    windows[:, 2] = 20 + y[:, None] + rng.normal(0, 0.3, (count, spec.window))
    return windows.astype(np.float32), y


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def _fitted(name: str, params: dict[str, Any], spec: InputSpec) -> Any:
    windows, y = _windows(spec, 240)
    trainer = TRAINERS.build(name, params)
    trainer.fit(python_features(spec, windows), y, seed=0)
    return trainer


@pytest.mark.parametrize("window", [64, 50])  # the FFT, and the direct transform
def test_c_features_equal_the_extractors_bit_for_bit_on_the_same_windows(
    window: int, workdir: Path
) -> None:
    spec = _spec(window, raw=True)
    windows = np.concatenate([probe_windows(spec, seed=1), _windows(spec, 32)[0]])
    windows[5, 0, 3] = np.nan  # the pipeline zeroes what no step repaired
    windows[6, 1, 0] = np.inf
    build = CBuild(c_sources(_fitted("decision_tree", {}, spec), spec, LABELS), workdir)

    in_c = build.features(windows)

    in_python = python_features(spec, windows)
    assert in_c.shape == in_python.shape == (len(windows), len(spec.features))
    assert np.array_equal(in_c.view(np.uint32), in_python.view(np.uint32))


@pytest.mark.parametrize(
    ("trainer", "params"),
    [
        ("decision_tree", {}),
        ("random_forest", {"n_estimators": 12}),
        ("mlp", {"hidden": [16], "max_iter": 300}),
    ],
)
def test_c_predictions_equal_the_python_pipeline_on_every_window(
    trainer: str, params: dict[str, Any], workdir: Path
) -> None:
    spec = _spec(64)
    fitted = _fitted(trainer, params, spec)
    onnx = fitted.to_onnx()
    windows = np.concatenate([_windows(spec, 120, seed=7)[0], probe_windows(spec)])

    in_c = CBuild(c_sources(fitted, spec, LABELS), workdir).predict(windows)

    in_python, _ = OnnxPredictor(onnx, LABELS).predict(python_features(spec, windows))
    assert len(set(in_python.tolist())) == len(LABELS)  # every class decided somewhere
    assert np.array_equal(in_c, in_python)


def test_names_from_users_files_reach_the_c_as_data_never_as_code(workdir: Path) -> None:
    # A trigraph ends a string in C99, a comment ends at */: both must stay inside the names.
    labels = ["a??/", '"};int p(void){return 8;}//', "Worn é\n"]
    sensor = "ax */ extern int system(const char *); /*"
    spec = _spec(64)
    hostile = make_spec(
        [sensor, "ay", "temp"],
        spec.rate_hz,
        spec.window,
        spec.hop,
        extractors=[
            FeatureSpec(kind="time_stats", params={"stats": STATS}, channels=[sensor]),
            FeatureSpec(kind="mean", channels=["temp"]),
        ],
    )
    fitted = _fitted("decision_tree", {}, hostile)
    files = c_sources(fitted, hostile, labels)
    windows = _windows(hostile, 60, seed=3)[0]

    in_c = CBuild(files, workdir).predict(windows)

    in_python, _ = OnnxPredictor(fitted.to_onnx(), labels).predict(
        python_features(hostile, windows)
    )
    assert np.array_equal(in_c, in_python)
    literals = re.search(r"edgestack_labels\[EDGESTACK_CLASSES\] = \{(.*)\};", files[SOURCE])
    assert literals is not None
    written = ast.literal_eval("[b" + literals.group(1).replace(", ", ", b") + "]")
    assert [name.decode() for name in written] == labels
    assert "*/ extern" not in files[SOURCE] and "??/" not in files[SOURCE]


def test_rows_on_and_beside_every_threshold_go_where_onnx_sends_them(workdir: Path) -> None:
    spec = _spec(64)
    windows, y = _windows(spec, 240)
    fitted = TRAINERS.build("decision_tree", {"preprocess": []})  # thresholds on the features
    # Labels at random: a deep tree, with many thresholds to probe.
    fitted.fit(python_features(spec, windows), np.random.default_rng(0).permutation(y), seed=0)
    tree = fitted.pipeline.steps[-1][1].tree_
    base = python_features(spec, windows[:1])[0]
    rows = []
    for node in np.flatnonzero(tree.children_left >= 0):
        near = np.float32(tree.threshold[node])
        for value in (np.nextafter(near, -np.inf), near, np.nextafter(near, np.inf)):
            row = base.copy()
            row[tree.feature[node]] = value
            rows.append(row)
    probes = np.asarray(rows, np.float32)

    in_c = CBuild(c_sources(fitted, spec, LABELS), workdir).classify(probes)

    in_onnx, _ = OnnxPredictor(fitted.to_onnx(), LABELS).predict(probes)
    assert len(probes) > 60
    assert np.array_equal(in_c, in_onnx)


@pytest.mark.parametrize("classes", [2, 3])
def test_a_forest_picks_the_onnx_class_even_on_ties_between_classes(
    classes: int, workdir: Path
) -> None:
    # Random labels on noise: leaves of mixed classes, and many rows where trees split even.
    spec = make_spec(["a"], 100.0, 8, 8, extractors=[FeatureSpec(kind="raw", params={"size": 8})])
    rng = np.random.default_rng(1)
    fitted = TRAINERS.build("random_forest", {"n_estimators": 7})
    fitted.fit(rng.normal(size=(400, 8)), rng.integers(0, classes, 400), seed=0)
    rows = rng.normal(size=(2000, 8)).astype(np.float32)
    labels = [f"c{k}" for k in range(classes)]

    in_c = CBuild(c_sources(fitted, spec, labels), workdir).classify(rows)

    in_onnx, probabilities = OnnxPredictor(fitted.to_onnx(), labels).predict(rows)
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    assert (top_two[:, 0] == top_two[:, 1]).sum() > 10  # ties, which 8-bit shares would break
    assert np.array_equal(in_c, in_onnx)


def test_export_checks_decisions_and_measures_flash_and_ram_for_the_mcu_profile() -> None:
    spec = _spec(64)
    small, large = (_fitted("random_forest", {"n_estimators": n}, spec) for n in (4, 40))
    held_out = python_features(spec, _windows(spec, 60, seed=11)[0])

    exported = [export_c(m, spec, LABELS, m.to_onnx(), held_out) for m in (small, large)]

    first, second = exported
    assert first.checked_rows == 60 and first.checked_windows == len(probe_windows(spec))
    assert first.footprint.model_bytes == first.size.text + first.size.data
    assert first.footprint.peak_ram_bytes == first.size.data + first.size.bss + first.size.stack
    assert first.size.stack >= 8 * spec.window  # a channel's window as float64, at least
    assert second.size.text > first.size.text  # ten times the trees
    assert first.refusals == second.refusals == []
    assert PROFILES["mcu"].refuses(first.footprint) == []


def test_a_c_model_that_decides_otherwise_than_the_onnx_model_is_not_exported() -> None:
    spec = _spec(64)
    fitted, other = (_fitted("decision_tree", {"max_depth": d}, spec) for d in (1, 6))
    held_out = python_features(spec, _windows(spec, 60, seed=11)[0])

    with pytest.raises(ExportError, match=r"decides otherwise than the ONNX model on .* held-out"):
        export_c(fitted, spec, LABELS, other.to_onnx(), held_out)


def test_a_model_too_big_for_the_mcu_profile_is_measured_and_refused() -> None:
    # Spectra of 16384-sample windows need more stack than the profile's RAM.
    spec = make_spec(["ax"], 8000.0, 16384, 16384, extractors=[FeatureSpec(kind="band_energies")])
    windows = probe_windows(spec, seed=5, count=24)
    y = np.arange(24) % 2
    fitted = TRAINERS.build("decision_tree", {})
    fitted.fit(python_features(spec, windows), y, seed=0)

    exported = export_c(fitted, spec, ["a", "b"], fitted.to_onnx(), python_features(spec, windows))

    assert exported.footprint.peak_ram_bytes > PROFILES["mcu"].ram_bytes
    assert any("RAM" in why for why in exported.refusals)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (
            make_spec(["mic"], 16000.0, 16000, 8000, extractors=[FeatureSpec(kind="mfcc")]),
            r"extractors\[0\] \(mfcc\): no C version",
        ),
        (
            make_spec(
                ["ax"],
                1000.0,
                64,
                64,
                steps=[StageSpec(kind="lowpass", params={"cutoff_hz": 100.0})],
                extractors=[FeatureSpec(kind="time_stats")],
            ),
            r"steps\[0\] \(lowpass\): the C target has no version",
        ),
    ],
)
def test_a_spec_with_no_c_version_is_refused_naming_the_part(spec: InputSpec, says: str) -> None:
    with pytest.raises(ExportError, match=says):
        features_c(spec)


@pytest.mark.parametrize(
    ("trainer", "params", "says"),
    [
        ("gradient_boosting", {"n_estimators": 3}, "GradientBoostingClassifier: emlearn has no"),
        ("decision_tree", {"preprocess": [{"kind": "normalise"}]}, r"preprocess\[0\] \(MinMax"),
    ],
)
def test_a_model_with_no_c_version_is_refused_naming_it(
    trainer: str, params: dict[str, Any], says: str
) -> None:
    spec = _spec(64)

    with pytest.raises(ExportError, match=says):
        c_sources(_fitted(trainer, params, spec), spec, LABELS)


def test_the_export_leaves_numpys_handling_of_floating_point_errors_as_it_was() -> None:
    # emlearn makes numpy raise on any floating-point error when imported; a process that
    # imports the export must still take an underflow as numpy does by default.
    script = (
        "import numpy as np; before = np.geterr(); import edgestack.learning.mcu.export; "
        "assert np.geterr() == before, np.geterr(); np.nextafter(0.0, 1.0)"
    )

    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    assert finished.returncode == 0, finished.stderr
