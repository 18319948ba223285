"""`edgestack data import` and `spec new` before they reach a hub: data sets read, cut and
reported, specs written, and bad input refused with reasons."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from edgestack.appspec import load_input_spec
from edgestack.cli import app
from edgestack.processing import FeaturePipeline

NO_HUB = ["--hub", "http://127.0.0.1:9"]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.output.split())


def _table(path: Path, lengths: dict[str, int]) -> Path:
    rows = [
        {"case": name, "label": "Worn Bearing", "x": float(i)}
        for name, n in lengths.items()
        for i in range(n)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_import_reports_short_cases_and_what_it_cut_before_uploading(tmp_path: Path) -> None:
    path = _table(tmp_path / "set.csv", {"a": 8, "b": 3, "c": 2})

    status, output = _run(
        "data", "import", str(path), "--rate", "1", "--window", "4", "--length", "crop", *NO_HUB
    )

    assert status == 1  # no hub listens: the upload fails after the report
    assert "2 cases shorter than a window of 4 (left out): b, c" in output
    assert "1 cases cut into 2 windows" in output
    assert "cannot reach the hub" in output


@pytest.mark.parametrize(
    ("files", "args", "reason"),
    [
        ({"rec.xlsx": ""}, [], "unknown format '.xlsx'; give a .csv or .parquet file"),
        ({"rec.parquet": "not parquet"}, [], "cannot read it"),
        ({}, [], "no such file or folder"),
        ({"rec.csv": "t,x\n0,1\n"}, [], "no label column; add one, or give --label"),
        ({"rec.csv": "t,x\n0,1\n"}, ["--label", "a\tb"], "holds a control character"),
        ({"rec.csv": "t,x\n0,1\n"}, ["--label", "l", "--dataset", "a/b"], "holds a slash"),
        ({"rec.csv": "t,x\n0,1\n"}, ["--label", "l", "--dataset", ".."], "--dataset '..': is ."),
        ({"rec.csv": "case,label,x\n1,a,1\n"}, [], "--rate: the files have no time column"),
        (
            {"rec.csv": "case,label,split,x\n1,a,test,1\n"},
            ["--split", "train"],
            "--split: ",
        ),
        (
            {"rec.csv": "t,x\n0,1\n1,2\n", "spec.json": '{"sensors": ["x"], "window": 1}'},
            ["--label", "l", "--spec", "spec.json"],
            "--spec: ",
        ),
    ],
)
def test_import_refuses_bad_input_before_calling_the_hub(
    tmp_path: Path, files: dict[str, str], args: list[str], reason: str
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    args = [str(tmp_path / a) if a.endswith(".json") else a for a in args]

    path = tmp_path / next(iter(files), "absent")

    status, output = _run("data", "import", str(path), *args, *NO_HUB)

    assert status == 2, output
    assert reason in output
    assert "cannot reach the hub" not in output


def test_a_spec_missing_fields_names_each_and_never_a_python_function(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"sensors": ["x"], "window": 4, "hop": 4, "extractors": []}))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        yaml.safe_dump(
            {
                "sensors": ["x"],
                "rate_hz": 10,
                "window": 4,
                "hop": 4,
                "extractors": [{"kind": "time_stats"}, {"kind": "band_energies"}],
                "features": ["x.rms"],
            }
        )
    )
    (tmp_path / "rec.csv").write_text("t,x\n0,1\n")
    rec = [str(tmp_path / "rec.csv"), "--label", "l"]

    _, missing = _run("data", "import", *rec, "--spec", str(spec), *NO_HUB)
    _, names = _run("data", "import", *rec, "--spec", str(wrong), *NO_HUB)

    assert "rate_hz: Field required" in missing
    assert "extractors: List should have at least 1 item" in missing
    assert "features: 1 names that are not the 13 the extractors give" in names
    assert "leave features out" in names and "()" not in names


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_spec_new_writes_a_spec_whose_features_are_derived(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"spec{suffix}"

    status, output = _run(
        "spec", "new", "--sensors", "ax,ay,az", "--rate", "100", "--window", "128",
        "--hop", "64", "--extractors", "time_stats,band_energies", "--out", str(out),
    )  # fmt: skip
    spec = load_input_spec(out)

    assert status == 0, output
    # The console wraps a long path anywhere: compared without the spaces it put in.
    assert f"{out}:39featuresof3channels" in "".join(output.split())
    assert (spec.sensors, spec.rate_hz, spec.window, spec.hop) == (["ax", "ay", "az"], 100, 128, 64)
    assert spec.features[:2] == ["ax.rms", "ax.peak"] and spec.features[-1] == "az.band7"
    FeaturePipeline(spec)  # the names are the ones the extractors give


def test_spec_new_raw_keeps_every_reading_and_names_a_bad_extractor(tmp_path: Path) -> None:
    status, printed = _run(
        "spec", "new", "--sensors", "a,b", "--rate", "1", "--window", "3", "--extractors", "raw"
    )
    bad_status, bad = _run(
        "spec", "new", "--sensors", "a", "--rate", "1", "--window", "3",
        "--extractors", "raw,bands",
    )  # fmt: skip

    assert status == 0
    assert json.loads(printed)["features"] == ["a.s0", "a.s1", "a.s2", "b.s0", "b.s1", "b.s2"]
    assert bad_status == 2
    assert "--extractors: extractors[1].kind: unknown feature extractor 'bands'" in bad


def test_import_cuts_with_a_yaml_app_spec(tmp_path: Path) -> None:
    app_spec = tmp_path / "app.yaml"
    app_spec.write_text(
        "name: motor\nsources: [{kind: motor}]\nwindow: 4\nhop: 4\n"
        "extractors: [{kind: mean, channels: [temperature]}]\n"
    )
    spec = load_input_spec(app_spec)
    frame = pd.DataFrame({"t": np.arange(8) / spec.rate_hz} | {s: np.ones(8) for s in spec.sensors})
    frame.to_csv(tmp_path / "rec.csv", index=False)

    status, output = _run(
        "data", "import", str(tmp_path / "rec.csv"), "--label", "ok", "--spec", str(app_spec),
        *NO_HUB,
    )  # fmt: skip

    assert spec.features == ["temperature.mean"]
    assert status == 1 and "1 cases cut into 2 windows" in output
