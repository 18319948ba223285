"""Compiling generated C with the host's C compiler: a runner of its `main.c` for checks, and
the object file whose sizes say what a microcontroller needs for it.

    build = CBuild(c_sources(trainer, spec, labels), workdir)
    build.predict(windows)   # class indices, as edgestack_predict gives them
    build.size               # text, data, bss and stack of the object file
"""

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgestack.bundle import Footprint
from edgestack.learning.mcu.features import ExportError

__all__ = ["HEADER", "MAIN", "SOURCE", "CBuild", "CSize"]

HEADER = "edgestack_model.h"
SOURCE = "edgestack_model.c"
MAIN = "main.c"
_FLAGS = ("-std=c99", "-Os", "-ffp-contract=off", "-Wall", "-Werror=implicit-function-declaration")
_INSTALL = "install one: sudo apt-get install gcc binutils"


@dataclass(frozen=True)
class CSize:
    """What the compiled model needs, from the object file: `text` (code and constants) and
    `data` in flash, `data` and `bss` in RAM, and `stack`, the frames of all its functions
    together (at least the deepest chain of calls)."""

    text: int
    data: int
    bss: int
    stack: int

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss + self.stack


class CBuild:
    """`files` compiled in `workdir` with the host's C compiler: the runner of `main.c` for
    checks, and the model's object file for its size."""

    def __init__(self, files: Mapping[str, str], workdir: Path) -> None:
        self.workdir = workdir
        for name, text in files.items():
            (workdir / name).write_text(text)
        cc = _tool("cc")
        _run([cc, *_FLAGS, "-I.", "-fstack-usage", "-c", SOURCE, "-o", "model.o"], workdir)
        _run([cc, *_FLAGS, "-I.", SOURCE, MAIN, "-lm", "-o", "runner"], workdir)
        self.size = _size(workdir)

    def footprint(self, windows: np.ndarray) -> Footprint:
        """The measured flash and RAM, and the host's mean time per window over `windows`
        (the C runs on the microcontroller; its budget is in flash and RAM)."""
        _, seconds = self._call("predict", windows, np.int32)
        per_window = 1000.0 * seconds / max(len(windows), 1)
        return Footprint(
            model_bytes=self.size.flash,
            peak_ram_bytes=self.size.ram,
            latency_ms_p50=per_window,
            latency_ms_p99=per_window,
        )

    def features(self, windows: np.ndarray) -> np.ndarray:
        """`edgestack_features` of each window `(k, channels, window)`: float32 `(k, F)`."""
        out, _ = self._call("features", windows, np.float32)
        return out.reshape(len(windows), -1)

    def classify(self, rows: np.ndarray) -> np.ndarray:
        """`edgestack_classify` of each feature row: class indices."""
        return self._call("classify", rows, np.int32)[0].astype(np.int64)

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """`edgestack_predict` of each window `(k, channels, window)`: class indices."""
        return self._call("predict", windows, np.int32)[0].astype(np.int64)

    def _call(self, mode: str, inputs: np.ndarray, dtype: type) -> tuple[np.ndarray, float]:
        records = np.ascontiguousarray(inputs, dtype=np.float32)
        done = subprocess.run(
            [str(self.workdir / "runner"), mode],
            input=records.tobytes(),
            capture_output=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise ExportError(f"the compiled model failed ({mode}): {done.stderr.decode()[-500:]}")
        return np.frombuffer(done.stdout, dtype=dtype), float(done.stderr.decode() or 0.0)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ExportError(
            f"no {name} on PATH: the C export compiles and measures the model; {_INSTALL}"
        )
    return found


def _run(command: list[str], workdir: Path) -> str:
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ExportError(f"{Path(command[0]).name} failed: {done.stderr[-2000:]}")
    return done.stdout


def _size(workdir: Path) -> CSize:
    """Berkeley `size` of the object (constants count as text), and its functions' frames."""
    lines = _run([_tool("size"), "--format=berkeley", "model.o"], workdir).splitlines()
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    frames = (workdir / "model.su").read_text().splitlines()
    return CSize(text, data, bss, sum(int(line.split("\t")[1]) for line in frames))
