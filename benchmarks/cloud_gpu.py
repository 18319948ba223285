"""The cloud tier on a GPU: a bigger model answering the windows devices offload, timed on
ONNX Runtime's CPU provider (how the hub serves where ONNX Runtime has no CUDA) against the
same net on the GPU, in one run on the machine that has it.

Two steps, since the machine with the GPU need not hold the project:

    python benchmarks/cloud_gpu.py prepare DIR   # here: trains the cloud net, writes DIR
    python benchmarks/cloud_gpu.py measure DIR   # where the GPU is: numpy, torch, onnxruntime

`prepare` trains the zoo's `cnn1d` (64 filters) on raw accelerometer windows (3 axes, 512
samples) of a simulated motor through each fault, and writes its ONNX graph, its TorchScript
trace and windows of another machine. `measure` answers batches of those windows as the cloud
tier would answer batches offloaded by many devices: per batch size, milliseconds per batch
(median of repeats after warm-up) on ONNX Runtime's CPU provider with every core (the anchor),
on ONNX Runtime's CUDA provider where the installed ONNX Runtime has one, and on PyTorch CUDA
in float32 and in float16 autocast (the same trace). Then a table, and one JSON line:

- `gpu`, `cpu_threads`, `providers`: what it ran on;
- `ms`: per runtime, per batch size, ms per batch;
- `gpu_vs_cpu_bN`: the fastest GPU runtime's ms over the anchor's at batch N (below 1: the GPU
  is faster), with `gpu_runtime_bN` naming it;
- `agreement`: per GPU runtime, the share of windows whose answer equals the anchor's.

Without a GPU `measure` prints the anchor alone and says so.
"""

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

BATCHES = (1, 16, 256, 4096)
REPEATS = 30


def prepare(out: Path) -> None:
    import torch

    # Beside this script: the simulated windows the split benchmark uses.
    from split import AXES, WINDOW, windows

    from edgestack.learning import TRAINERS
    from edgestack.learning.zoo import NetTrainer

    x, y = windows(1, per_fault=60)
    trainer = TRAINERS.build("cnn1d", {"shape": (AXES, WINDOW), "filters": 64, "epochs": 30})
    assert isinstance(trainer, NetTrainer)
    trainer.fit(x, y, seed=0)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cloud.onnx").write_bytes(trainer.to_onnx())
    module = trainer.module.eval()
    torch.jit.trace(module, torch.from_numpy(x[:2])).save(str(out / "cloud.pt"))
    from edgestack.sensing import FAULTS

    test, _ = windows(2, per_fault=max(BATCHES) // len(FAULTS) + 1)
    np.save(out / "windows.npy", test[: max(BATCHES)])
    print(f"wrote {out}: cloud.onnx, cloud.pt, windows.npy ({len(test)} windows)")


def _median_ms(run: Callable[[], object], sync: Callable[[], None]) -> float:
    for _ in range(5):
        run()
    sync()
    spent = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        sync()
        spent.append((time.perf_counter() - start) * 1000)
    return statistics.median(spent)


def measure(given: Path) -> None:
    import onnxruntime as ort
    import torch

    windows = np.load(given / "windows.npy").astype(np.float32)
    onnx_bytes = (given / "cloud.onnx").read_bytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    cpu = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])

    def with_ort(session: "ort.InferenceSession") -> Callable[[np.ndarray], np.ndarray]:
        return lambda rows: session.run(None, {"features": rows})[0]

    runtimes: dict[str, Callable[[np.ndarray], np.ndarray]] = {"ort-cpu": with_ort(cpu)}
    sync: Callable[[], None] = lambda: None  # noqa: E731
    gpu = None
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        sync = torch.cuda.synchronize
        if "CUDAExecutionProvider" in ort.get_available_providers():
            cuda = ort.InferenceSession(onnx_bytes, providers=["CUDAExecutionProvider"])
            runtimes["ort-cuda"] = with_ort(cuda)
        net = torch.jit.load(str(given / "cloud.pt"), map_location="cuda").eval()

        def with_torch(half: bool) -> Callable[[np.ndarray], np.ndarray]:
            def run(rows: np.ndarray) -> np.ndarray:
                # The window's bytes cross to the GPU and the answers back, as a request's would.
                with torch.inference_mode(), torch.autocast("cuda", enabled=half):
                    return net(torch.from_numpy(rows).to("cuda")).float().cpu().numpy()

            return run

        runtimes["torch-cuda-fp32"] = with_torch(False)
        runtimes["torch-cuda-fp16"] = with_torch(True)

    anchor = runtimes["ort-cpu"](windows).argmax(axis=1)
    ms = {
        name: {n: _median_ms(lambda run=run, n=n: run(windows[:n]), sync) for n in BATCHES}
        for name, run in runtimes.items()
    }
    agreement = {
        name: float(np.mean(run(windows).argmax(axis=1) == anchor))
        for name, run in runtimes.items()
        if name != "ort-cpu"
    }

    from rich.console import Console
    from rich.table import Table

    table = Table(
        "runtime",
        *(f"batch {n} ms" for n in BATCHES),
        "agreement",
        title=f"cloud cnn1d, {windows.shape[1]} values a window; GPU: {gpu or 'none'}",
    )
    for name, row in ms.items():
        table.add_row(name, *(f"{row[n]:.3f}" for n in BATCHES), f"{agreement.get(name, 1.0):.4f}")
    Console().print(table)
    report: dict[str, object] = {
        "gpu": gpu,
        "cpu_threads": options.intra_op_num_threads,
        "providers": ort.get_available_providers(),
        "ms": {name: {str(n): round(v, 4) for n, v in row.items()} for name, row in ms.items()},
        "agreement": agreement,
    }
    if gpu is None:
        print("no GPU here: the anchor alone")
    else:
        for n in BATCHES:
            best = min((name for name in ms if name != "ort-cpu"), key=lambda k: ms[k][n])
            report[f"gpu_vs_cpu_b{n}"] = round(ms[best][n] / ms["ort-cpu"][n], 4)
            report[f"gpu_runtime_b{n}"] = best
    print(json.dumps(report))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("prepare", "measure"):
        sys.exit("usage: cloud_gpu.py prepare|measure DIR")
    (prepare if sys.argv[1] == "prepare" else measure)(Path(sys.argv[2]))
