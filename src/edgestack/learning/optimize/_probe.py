"""Runs one ONNX model in a process of its own and reports what it cost; `measure` starts it.

Run as a script (`python -I _probe.py`) with a pickled request on stdin: it imports only numpy
and ONNX Runtime, so the process starts in a fraction of a second, its memory high-water mark
belongs to this model alone, and the model's arena cannot make the next one look cheaper.
"""

import pickle
import resource
import sys
import time

import numpy as np
import onnxruntime as ort

_WARM_UP = 10
_BATCH = 1024  # rows per call when scoring accuracy; batch size does not change the answer
_RESAMPLES = 200


def _reset_peak() -> bool:
    """Start the high-water mark afresh, so reading the request and importing do not hide
    a smaller model's growth; Linux only (`/proc/self/clear_refs`)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_bytes(reset: bool) -> int:
    if reset:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def main() -> None:
    request = pickle.load(sys.stdin.buffer)
    x, y, runs = request["x"], request["y"], request["runs"]
    reset = _reset_peak()
    before = _peak_bytes(reset)
    options = ort.SessionOptions()
    # As OnnxPredictor runs it on a device: one thread each, batch 1.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        request["model"], sess_options=options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    output = "probabilities" if "probabilities" in outputs else outputs[-1]
    rows = [np.ascontiguousarray(x[i : i + 1]) for i in range(min(len(x), runs))]
    for i in range(_WARM_UP):
        session.run([output], {name: rows[i % len(rows)]})
    took = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        session.run([output], {name: rows[i % len(rows)]})
        took[i] = time.perf_counter_ns() - start
    peak = _peak_bytes(reset) - before
    predicted = np.concatenate(
        [
            np.asarray(session.run([output], {name: x[i : i + _BATCH]})[0]).argmax(axis=1)
            for i in range(0, len(x), _BATCH)
        ]
    )
    pickle.dump(
        {
            "peak_ram_bytes": peak,
            "latency_ms_p50": float(np.percentile(took, 50)) / 1e6,
            "latency_ms_p99": float(np.percentile(took, 99)) / 1e6,
            "p99_noise_ms": _p99_noise(took) / 1e6,
            "accuracy": float(np.mean(predicted == y)),
        },
        sys.stdout.buffer,
    )


def _p99_noise(took: np.ndarray) -> float:
    """How far the p99 of these calls could move in another run of as many: two standard
    deviations of the p99 over resamples of them (seeded, so the same calls give the same
    noise)."""
    rng = np.random.default_rng(0)
    resampled = rng.choice(took, size=(_RESAMPLES, len(took)), replace=True)
    return float(2 * np.percentile(resampled, 99, axis=1).std())


if __name__ == "__main__":
    main()
