"""A labelled multichannel data set imported in one command with its split, trained on and
evaluated on its test split, against a real hub process."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from edgestack.cli import app
from edgestack.demo import LocalFleet

from .test_cli import cli

pytestmark = pytest.mark.integration

STATS = ("rms", "peak", "crest", "kurtosis", "skewness")
# Per label, the frequency each of the three channels hums at.
CLASSES = {"normal": 5.0, "Worn Bearing": 18.0, "2": 33.0}


def _long_table(path: Path, cases: int, size: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    t = np.arange(size) / 100.0
    frames = []
    for case in range(cases):
        label = list(CLASSES)[case % len(CLASSES)]
        hum = np.sin(2 * np.pi * CLASSES[label] * t + rng.uniform(0, np.pi))
        frames.append(
            pd.DataFrame(
                {
                    "case": f"c{case}",
                    "label": label,
                    "split": "test" if case % 3 == 0 else "train",
                    "ax": hum + rng.normal(0, 0.2, size),
                    "ay": 0.5 * hum + rng.normal(0, 0.2, size),
                    "az": rng.normal(0, 0.2, size),
                }
            )
        )
    table = pd.concat(frames)
    table.to_csv(path, index=False)
    return table


def _spec_new(out: Path, window: str, extractors: str) -> int:
    """`edgestack spec new`, which needs no hub, run here."""
    args = ["--sensors", "ax,ay,az", "--rate", "100", "--window", window]
    result = CliRunner().invoke(
        app, ["spec", "new", *args, "--extractors", extractors, "--out", str(out)]
    )
    return result.exit_code


def test_a_labelled_set_is_imported_once_trained_and_evaluated_on_its_test_split(
    tmp_path: Path,
) -> None:
    table = _long_table(tmp_path / "bearings.csv", cases=42, size=32)
    by_split = table.groupby("split")["case"].nunique().to_dict()
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()

        imported = cli(
            fleet, "data", "import", str(tmp_path / "bearings.csv"),
            "--dataset", "Bearing Set", "--rate", "100",
        )  # fmt: skip
        version = fleet.client.dataset("Bearing Set").versions
        features = cli(fleet, "train", "Bearing Set", "--model", "logistic_regression", "--json")
        network = cli(
            fleet, "train", "Bearing Set", "--model", "cnn1d", "--name", "bearing-net",
            "--params", '{"epochs": 2}', "--json",
        )  # fmt: skip
        made = _spec_new(tmp_path / "stats.yaml", "32", "time_stats")
        stats = cli(
            fleet, "train", "Bearing Set", "--model", "decision_tree", "--name", "stats",
            "--spec", str(tmp_path / "stats.yaml"), "--json",
        )  # fmt: skip
        bands = cli(
            fleet, "train", "Bearing Set", "--model", "decision_tree", "--name", "bands",
            "--extractors", "band_energies", "--json",
        )  # fmt: skip
        wide = _spec_new(tmp_path / "wide.json", "64", "time_stats,band_energies")
        mismatched = cli(
            fleet, "train", "Bearing Set", "--model", "decision_tree",
            "--spec", str(tmp_path / "wide.json"),
        )  # fmt: skip
        tried = cli(
            fleet, "train", "Bearing Set", "--model", "auto", "--budget-s", "2",
            "--name", "bearing-auto", "--json",
        )  # fmt: skip
        model = json.loads(features.stdout)["model"]["name"] if features.returncode == 0 else "-"
        scored = cli(fleet, "evaluate", f"{model}@1", "Bearing Set@1", "--json")
        optimised = cli(fleet, "optimize", model, "--profile", "pi", "--json")
        printed = cli(fleet, "evaluate", model, "Bearing Set")

    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "42 cases cut into 42 windows" in imported.stdout
    assert "Bearing Set v1: 42 samples" in imported.stdout
    (v1,) = version
    assert v1.counts.splits == by_split == {"test": 14, "train": 28}
    assert v1.counts.labels == {"2": 14, "Worn Bearing": 14, "normal": 14}
    assert features.returncode == 0, features.stdout + features.stderr
    registered = json.loads(features.stdout)["model"]
    assert model.startswith("bearing-set-")
    # Features computed from the raw windows: the bundle records that spec, not the raw one.
    assert registered["manifest"]["input"]["features"][:2] == ["ax.rms", "ax.peak"]
    assert registered["manifest"]["lineage"]["dataset"] == "Bearing Set"
    assert network.returncode == 0, network.stdout + network.stderr
    net = json.loads(network.stdout)["model"]["manifest"]
    assert net["lineage"]["params"]["shape"] == [3, 32]
    assert net["input"]["features"][:2] == ["ax.s0", "ax.s1"]
    assert made == wide == 0
    assert stats.returncode == 0, stats.stdout + stats.stderr
    stats_input = json.loads(stats.stdout)["model"]["manifest"]["input"]
    assert stats_input["features"] == [f"{c}.{s}" for c in ("ax", "ay", "az") for s in STATS]
    assert bands.returncode == 0, bands.stdout + bands.stderr
    bands_input = json.loads(bands.stdout)["model"]["manifest"]["input"]
    assert bands_input["features"][-1] == "az.band7" and len(bands_input["features"]) == 24
    assert mismatched.returncode == 2, mismatched.stdout
    assert "spec: window: the model's spec has 64, the data set's raw windows 32" in " ".join(
        mismatched.stdout.split()
    )
    assert tried.returncode == 0, tried.stdout + tried.stderr
    auto = json.loads(tried.stdout)
    inputs = {c["trainer"]: c["input"] for c in auto["leaderboard"]}
    assert inputs["minirocket"] == inputs["cnn1d"] == "raw"
    assert inputs["logistic_regression"] == "features"
    scored_raw = next(c for c in auto["leaderboard"] if c["trainer"] == "minirocket")
    assert scored_raw["macro_f1"] is not None  # the first raw candidate runs within 2 s
    winner = next(
        c
        for c in auto["leaderboard"]
        if c["trainer"] == auto["model"]["manifest"]["lineage"]["trainer"]
    )
    first_feature = auto["model"]["manifest"]["input"]["features"][0]
    assert first_feature == ("ax.s0" if winner["input"] == "raw" else "ax.rms")
    assert scored.returncode == 0, scored.stdout + scored.stderr
    summary = json.loads(scored.stdout)
    assert (summary["dataset"], summary["dataset_version"]) == ("Bearing Set", 1)
    assert summary["rows"] == by_split["test"]  # one window per test case
    assert summary["metrics"]["accuracy"] >= 0.9
    assert sum(map(sum, summary["confusion"])) == by_split["test"]
    # Optimising refits from the lineage on features computed from the raw windows again.
    assert optimised.returncode == 0, optimised.stdout + optimised.stderr
    report = json.loads(optimised.stdout)
    assert report["registered"]["manifest"]["input"] == registered["manifest"]["input"]
    assert next(c for c in report["candidates"] if c["name"] == "fp32")["accuracy"] >= 0.9
    assert printed.returncode == 0, printed.stdout + printed.stderr
    assert "confusion matrix" in printed.stdout and "Worn Bearing" in printed.stdout
