"""Streaming feature extraction against the same math on the whole recording at once.

The vibration pipeline (3 accelerometer axes at 1 kHz, windows of 256 samples every 128, time
statistics, octave band energies, dominant frequency and spectral centroid) fed 1 s chunks
(the block a 1 kHz acquisition board hands over, about 8 windows) through `FeaturePipeline`,
against `Windower` and the extractors called once on the whole recording. Throughput counts
scalar samples: channels x time steps. One thread.

The JSON's `ratio` is for 1 s chunks. The table and `ratio_at_0_1_s_chunks` also show 0.1 s
chunks, less than one window each: there every push pays numpy's fixed cost for a single
window that the batch path shares over hundreds, and the ratio falls to about a tenth.

    python benchmarks/processing.py   # a table, then one JSON line
"""

import os

# Before numpy loads: one core, as on a device.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import time
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.table import Table

from edgestack.bundle import FeatureSpec
from edgestack.processing import EXTRACTORS, FeaturePipeline, Windower, make_spec
from edgestack.sensing import Chunk

RATE = 1000.0
SECONDS = 120
CHUNK = 1000  # 1 s
SMALL_CHUNK = 100  # 0.1 s
REPEATS = 5
SENSORS = ["accel_x", "accel_y", "accel_z"]
SPEC = make_spec(
    SENSORS,
    RATE,
    256,
    128,
    extractors=[
        FeatureSpec(kind="time_stats"),
        FeatureSpec(kind="band_energies"),
        FeatureSpec(kind="dominant_frequency"),
        FeatureSpec(kind="spectral_centroid"),
    ],
)


def _recording() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(round(SECONDS * RATE)) / RATE
    hum = np.sin(2 * np.pi * 29.5 * t) + 0.3 * np.sin(2 * np.pi * 59.0 * t)
    return (hum + 0.2 * rng.standard_normal((len(SENSORS), len(t)))).astype(np.float32)


def _streaming(recording: np.ndarray, size: int = CHUNK) -> np.ndarray:
    pipeline = FeaturePipeline(SPEC)
    units = ("g",) * len(SENSORS)
    rows = []
    for start in range(0, recording.shape[1], size):
        chunk = Chunk(start / RATE, RATE, tuple(SENSORS), units, recording[:, start : start + size])
        rows.append(pipeline.push(chunk))
    return np.concatenate(rows)


def _batch(recording: np.ndarray) -> np.ndarray:
    windows = Windower(SPEC.window, SPEC.hop).push(recording)
    windows.flags.writeable = False  # as the pipeline hands them over: extractors share work
    extractors = [EXTRACTORS.build(f.kind, f.params) for f in SPEC.extractors]
    return np.hstack([extractor(windows, RATE) for extractor in extractors])


def _best_seconds(run: Callable[[np.ndarray], np.ndarray], recording: np.ndarray) -> float:
    best = np.inf
    for _ in range(REPEATS):
        started = time.perf_counter()
        run(recording)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    recording = _recording()
    if not np.allclose(_streaming(recording), _batch(recording), rtol=1e-5, atol=1e-6):
        raise SystemExit("streaming and batch features differ: the comparison would be void")
    samples = recording.size  # channels x time steps
    streaming = samples / _best_seconds(_streaming, recording)
    batch = samples / _best_seconds(_batch, recording)
    small = samples / _best_seconds(lambda r: _streaming(r, SMALL_CHUNK), recording)

    table = Table(title=f"{len(SENSORS)} channels x {SECONDS * RATE:.0f} time steps at {RATE:g} Hz")
    table.add_column("path")
    table.add_column("scalar samples/s (channels x steps)", justify="right")
    table.add_row(f"streaming, {SMALL_CHUNK}-sample chunks", f"{small:,.0f}")
    table.add_row(f"streaming, {CHUNK}-sample chunks", f"{streaming:,.0f}")
    table.add_row("batch, whole recording", f"{batch:,.0f}")
    table.add_row(f"ratio streaming / batch, {SMALL_CHUNK}-sample chunks", f"{small / batch:.2f}")
    table.add_row(f"ratio streaming / batch, {CHUNK}-sample chunks", f"{streaming / batch:.2f}")
    Console().print(table)
    print(
        json.dumps(
            {
                "streaming_samples_per_s": round(streaming),
                "batch_samples_per_s": round(batch),
                "ratio": round(streaming / batch, 3),
                "ratio_at_0_1_s_chunks": round(small / batch, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
