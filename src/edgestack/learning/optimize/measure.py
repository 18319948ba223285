"""What a model costs and how well it does: size, peak memory, latency and held-out accuracy,
measured with ONNX Runtime on one thread, batch 1, as a device runs it."""

import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgestack.bundle import Footprint

__all__ = ["Measurement", "MeasurementError", "measure"]

_PROBE = Path(__file__).with_name("_probe.py")
_TIMEOUT_S = 300.0


class MeasurementError(RuntimeError):
    """ONNX Runtime could not load or run the model; the message carries its reason."""


@dataclass(frozen=True)
class Measurement:
    """A model's `footprint` and its `accuracy` (share of held-out rows whose most likely
    class is the true one, 0 to 1); `p99_noise_ms`, how far its p99 latency could move in
    another run of the same calls, sets which latencies count as the same."""

    footprint: Footprint
    accuracy: float
    p99_noise_ms: float = 0.0


def measure(model: bytes, x: np.ndarray, y: np.ndarray, *, runs: int = 200) -> Measurement:
    """Measure `model` on held-out rows `x` (float32 `(n, F)`) with class indices `y`.

    In a fresh process, so no measurement inherits another's memory: `peak_ram_bytes` is how
    far creating the session and `runs` single-row calls raise that process's high-water mark;
    latencies are percentiles of those calls after a warm-up; accuracy is scored on all rows.

        m = measure(onnx_bytes, test.x, test.y)
        m.footprint.latency_ms_p99, m.accuracy
    """
    rows = np.ascontiguousarray(x, dtype=np.float32)
    if rows.ndim != 2 or not len(rows):
        raise ValueError(f"x: shape {rows.shape}, expected held-out rows (n > 0, features)")
    if np.shape(y) != (len(rows),):
        raise ValueError(f"y: shape {np.shape(y)} for {len(rows)} rows; give one class per row")
    if runs < 1:
        raise ValueError(f"runs: {runs}; give at least 1 timed call")
    request = pickle.dumps({"model": model, "x": rows, "y": np.asarray(y), "runs": runs})
    # -I: the probe sees neither the caller's directory nor PYTHON* variables.
    done = subprocess.run(
        [sys.executable, "-I", str(_PROBE)],
        input=request,
        capture_output=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise MeasurementError(lines[-1] if lines else f"the probe exited with {done.returncode}")
    result = pickle.loads(done.stdout)
    accuracy = result.pop("accuracy")
    noise = result.pop("p99_noise_ms")
    return Measurement(Footprint(model_bytes=len(model), **result), accuracy, noise)
