"""Optimisation on scikit-learn's digits: int8 against fp32, and ONNX Runtime against the
frameworks that trained the models.

Two models from the zoo: an MLP (256-256, scikit-learn) on the 8x8 images as 64 columns, and
a 2D-CNN (48 then 96 filters, PyTorch) on the images upsampled to 32x32, so convolutions do
the work that int8 kernels speed up. The width is a trade-off the figures show: with 32
filters int8's fixed costs eat its gain (about 1.1x, size ratio 3.3); with 64 it gains 1.9x,
but convolution then dominates PyTorch eager too and ONNX Runtime's lead falls to about 3x.
Each candidate is measured as `edgestack optimize` does:
ONNX Runtime on one thread, batch 1, in a fresh process, accuracy on the held-out quarter.

- `*_int8_size_ratio`: bytes of the model as trained over bytes of its `int8_static` candidate
- `*_int8_acc_drop_pts`: held-out accuracy points `int8_static` loses
- `cnn_int8_static_speedup`: p50 latency of the `fp32` candidate (ONNX Runtime's graph
  optimisations applied) over `int8_static`'s
- `ort_vs_sklearn_speedup`, `ort_vs_torch_speedup`: median time of one row through the
  native model (scikit-learn `predict_proba`; PyTorch eager on one thread, no gradients) over
  the same row through ONNX Runtime, in this process

    python benchmarks/optimize.py   # a table, then one JSON line
"""

import os

# Before numpy loads: one core, as on a device.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import logging
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
import torch
from rich.console import Console
from rich.table import Table
from scipy.ndimage import zoom
from sklearn.datasets import load_digits

from edgestack.learning import FitResult, fit
from edgestack.learning.optimize import Baseline, Candidate, build, measure

RUNS = 300  # timed single-row calls per candidate
ROWS = 200  # single-row calls per in-process comparison
CANDIDATES = ("fp32", "fp16", "int8_dynamic", "int8_static")


def _median_s(call: Callable[[np.ndarray], object], rows: np.ndarray) -> float:
    for row in rows[:20]:
        call(row)
    took = []
    for row in rows:
        start = time.perf_counter()
        call(row)
        took.append(time.perf_counter() - start)
    return float(np.median(took))


def _session(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _candidates(result: FitResult) -> dict[str, Candidate]:
    baseline = Baseline(
        result.onnx, result.labels, result.train.x, result.train.y, result.lineage, result.trainer
    )
    found = {"parent": Candidate("parent", result.onnx, measure(result.onnx, *_test(result)))}
    for name in CANDIDATES:
        found[name] = build(name, baseline, *_test(result), runs=RUNS)
    return found


def _test(result: FitResult) -> tuple[np.ndarray, np.ndarray]:
    return result.test.x, result.test.y


def main() -> None:
    for logger in ("torch.onnx", "onnxscript"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    labels = [str(v) for v in y]
    started = time.perf_counter()
    mlp = fit("mlp", x.astype(np.float32), labels, params={"hidden": [256, 256]}, seed=0)
    images = zoom(x.reshape(-1, 8, 8), (1, 4, 4), order=1).reshape(len(x), -1)
    cnn = fit(
        "cnn2d",
        images.astype(np.float32),
        labels,
        params={"shape": [1, 32, 32], "filters": 48, "epochs": 4},
        seed=0,
    )
    trained_s = time.perf_counter() - started
    models = {"mlp": _candidates(mlp), "cnn": _candidates(cnn)}

    table = Table(
        "model", "candidate", "bytes", "peak RAM MB", "p50 ms", "p99 ms", "accuracy", "note",
        title=f"digits, ONNX Runtime, one thread, batch 1 (trained in {trained_s:.0f} s)",
    )  # fmt: skip
    for model, found in models.items():
        for name, c in found.items():
            m = c.measurement
            if m is None:
                table.add_row(model, name, *["-"] * 5, c.problem or "")
                continue
            f = m.footprint
            table.add_row(
                model,
                name,
                str(f.model_bytes),
                f"{f.peak_ram_bytes / 2**20:.1f}",
                f"{f.latency_ms_p50:.3f}",
                f"{f.latency_ms_p99:.3f}",
                f"{100 * m.accuracy:.2f}%",
                "",
            )

    row_mlp = mlp.test.x[:ROWS, None, :]
    row_cnn = cnn.test.x[:ROWS, None, :]
    pipeline = mlp.trainer.pipeline  # type: ignore[attr-defined]
    sklearn_s = _median_s(pipeline.predict_proba, row_mlp)
    mlp_session = _session(mlp.onnx)
    ort_mlp_s = _median_s(lambda r: mlp_session.run(None, {"features": r}), row_mlp)
    module = cnn.trainer.module  # type: ignore[attr-defined]
    module.eval()
    with torch.no_grad():
        torch_s = _median_s(lambda r: module(torch.from_numpy(r)), row_cnn)
    cnn_fp32 = models["cnn"]["fp32"].model
    assert cnn_fp32 is not None, models["cnn"]["fp32"].problem
    cnn_session = _session(cnn_fp32)
    ort_cnn_s = _median_s(lambda r: cnn_session.run(None, {"features": r}), row_cnn)
    table.add_row("mlp", "scikit-learn", "", "", f"{1e3 * sklearn_s:.3f}", "", "", "in process")
    table.add_row("mlp", "ONNX Runtime", "", "", f"{1e3 * ort_mlp_s:.3f}", "", "", "in process")
    table.add_row("cnn", "PyTorch eager", "", "", f"{1e3 * torch_s:.3f}", "", "", "in process")
    table.add_row("cnn", "ONNX Runtime", "", "", f"{1e3 * ort_cnn_s:.3f}", "", "", "in process")
    Console().print(table)

    def measured(model: str, name: str) -> tuple[int, float, float]:
        m = models[model][name].measurement
        assert m is not None, models[model][name].problem
        return m.footprint.model_bytes, m.footprint.latency_ms_p50, m.accuracy

    result = {}
    for model in models:
        parent_bytes, _, parent_acc = measured(model, "parent")
        int8_bytes, _, int8_acc = measured(model, "int8_static")
        result[f"{model}_int8_size_ratio"] = round(parent_bytes / int8_bytes, 2)
        result[f"{model}_int8_acc_drop_pts"] = round(100 * (parent_acc - int8_acc), 2)
    result["cnn_int8_static_speedup"] = round(
        measured("cnn", "fp32")[1] / measured("cnn", "int8_static")[1], 2
    )
    result["ort_vs_sklearn_speedup"] = round(sklearn_s / ort_mlp_s, 1)
    result["ort_vs_torch_speedup"] = round(torch_s / ort_cnn_s, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
