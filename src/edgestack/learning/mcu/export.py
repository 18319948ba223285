"""A fitted tree, forest or MLP as C for a microcontroller: emlearn writes the model, the
window features are the spec's extractors in C, and the host's C compiler checks and measures
the result before anything is written.

    exported = export_c(trainer, spec, labels, onnx, held_out_rows)   # checked, measured
    exported.write(Path("firmware/model"))

The entry point is `int32_t edgestack_predict(const float *window)`, `window` being
`channels x window` samples, channel-major; `edgestack_features` and `edgestack_classify`
are its two halves.
"""

import io
import re
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

# emlearn sets numpy to raise on every floating-point error when imported (its bayes module
# calls numpy.seterr), which would turn harmless underflows anywhere in the process into
# crashes; the state is put back as it was.
with np.errstate():
    import emlearn
    from emlearn.net import c_generate_net_loadable

from edgestack.bundle import Footprint, InputSpec
from edgestack.learning.mcu.build import HEADER, MAIN, SOURCE, CBuild, CSize
from edgestack.learning.mcu.features import ExportError, c_float, c_string, features_c
from edgestack.learning.trainer import Trainer
from edgestack.learning.zoo import SklearnTrainer
from edgestack.predictor import OnnxPredictor
from edgestack.processing import FeaturePipeline
from edgestack.profiles import PROFILES
from edgestack.sensing import Chunk

__all__ = [
    "C_TRAINERS",
    "CExport",
    "c_sources",
    "export_c",
    "probe_windows",
    "python_features",
    "sources_tar",
]

C_TRAINERS = ("decision_tree", "mlp", "random_forest")


@dataclass(frozen=True)
class CExport:
    """A model as C, checked and measured: its `files`, `size` and `footprint`, why it does
    not fit the mcu profile (`refusals`, empty when it does), and how many held-out rows and
    probe windows its decisions were checked on."""

    files: dict[str, str]
    size: CSize
    footprint: Footprint
    checked_rows: int
    checked_windows: int
    refusals: list[str] = field(default_factory=list)

    def write(self, out: Path) -> list[Path]:
        """The files written into folder `out`, made if missing."""
        try:
            out.mkdir(parents=True, exist_ok=True)
            paths = [out / name for name in sorted(self.files)]
            for path in paths:
                path.write_text(self.files[path.name])
        except OSError as exc:
            raise ExportError(f"out: cannot write the C files into {out}: {exc}") from None
        return paths


def export_c(
    trainer: Trainer,
    spec: InputSpec,
    labels: Sequence[str],
    onnx: bytes,
    held_out: np.ndarray,
    *,
    seed: int = 0,
) -> CExport:
    """`trainer`, fitted on inputs `spec`, as C; compiled with the host's C compiler and
    checked to decide as the ONNX model `onnx` does on the feature rows `held_out` and, from
    raw samples through the features, on probe windows (`probe_windows`); measured and
    checked against the mcu profile.

    Raises `ExportError` for what has no C version, a missing compiler, or a C model whose
    decisions differ from the ONNX model's."""
    files = c_sources(trainer, spec, labels)
    onnx_model = OnnxPredictor(onnx, labels)
    windows = probe_windows(spec, seed)
    with tempfile.TemporaryDirectory(prefix="edgestack-c-") as workdir:
        build = CBuild(files, Path(workdir))
        _agree("held-out rows", build.classify(held_out), onnx_model.predict(held_out)[0], labels)
        expected = onnx_model.predict(python_features(spec, windows))[0]
        _agree("probe windows", build.predict(windows), expected, labels)
        footprint = build.footprint(windows)
    return CExport(
        files,
        build.size,
        footprint,
        len(held_out),
        len(windows),
        PROFILES["mcu"].refuses(footprint),
    )


def probe_windows(spec: InputSpec, seed: int = 0, count: int = 64) -> np.ndarray:
    """`count` windows `(count, channels, spec.window)` float32 of what sensors give: noise
    of random spread about random offsets with a tone of random frequency, the first two
    flat (all zeros, then a constant), which have no shape or spectrum."""
    rng = np.random.default_rng(seed)
    shape = (count, len(spec.sensors), spec.window)
    t = np.arange(spec.window) / spec.rate_hz
    tone = np.sin(2 * np.pi * rng.uniform(0, spec.rate_hz / 2, shape[:2])[..., None] * t)
    windows = (
        rng.normal(0, 5, shape[:2])[..., None]
        + rng.uniform(0, 3, shape[:2])[..., None] * tone
        + rng.exponential(1, shape[:2])[..., None] * rng.normal(size=shape)
    )
    windows[0] = 0.0
    windows[1] = 1.5
    return windows.astype(np.float32)


def _agree(what: str, c: np.ndarray, onnx: np.ndarray, labels: Sequence[str]) -> None:
    differ = np.flatnonzero(c != onnx)
    if len(differ):
        i = differ[0]
        raise ExportError(
            f"the C model decides otherwise than the ONNX model on {len(differ)} of {len(c)} "
            f"{what} (first: {what} {i}, C {_label(labels, c[i])}, ONNX {labels[onnx[i]]}); "
            "it is not exported"
        )


def _label(labels: Sequence[str], index: int) -> str:
    return labels[index] if 0 <= index < len(labels) else f"error {index}"


def c_sources(trainer: Trainer, spec: InputSpec, labels: Sequence[str]) -> dict[str, str]:
    """The C files of `trainer` on inputs `spec`: the header and source of
    `edgestack_predict`, emlearn's headers the model includes, and a small `main.c` that runs
    it over standard input for tests. Raises `ExportError` naming what has no C version."""
    features = features_c(spec)
    model, classify = _model_c(trainer, len(spec.features))
    quoted = ", ".join(c_string(label) for label in labels)
    source = _SOURCE.format(
        header=HEADER, model=model, features=features, classify=classify, labels=quoted
    )
    files = {
        HEADER: _HEADER.format(
            channels=len(spec.sensors),
            window=spec.window,
            hop=spec.hop,
            features=len(spec.features),
            classes=len(labels),
            rate=spec.rate_hz,
        ),
        SOURCE: source,
        MAIN: _MAIN.format(header=HEADER),
    }
    for name in _emlearn_headers(model):
        files[name] = (Path(emlearn.includedir) / name).read_text()
    return files


def sources_tar(files: Mapping[str, str]) -> bytes:
    """`files` as a tar archive, packed deterministically: the payload of a C bundle."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            payload = files[name].encode()
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def python_features(spec: InputSpec, windows: np.ndarray) -> np.ndarray:
    """The feature rows `processing` gives for `windows` `(k, channels, spec.window)`: the
    windows laid end to end through a `FeaturePipeline` that hops a whole window."""
    pipeline = FeaturePipeline(spec.model_copy(update={"hop": spec.window}))
    data = np.ascontiguousarray(np.concatenate(list(windows), axis=-1), dtype=np.float32)
    units = tuple("" for _ in spec.sensors)
    return pipeline.push(Chunk(0.0, spec.rate_hz, tuple(spec.sensors), units, data))


def _model_c(trainer: Trainer, n_features: int) -> tuple[str, str]:
    """emlearn's C of the fitted model as `edgestack_model_predict(x, n)`, and how
    `edgestack_classify` feeds it: the row transforms as the ONNX graph computes them
    (float32), then the features in the type emlearn's code takes."""
    if not isinstance(trainer, SklearnTrainer) or trainer.pipeline is None:
        raise ExportError(
            f"{type(trainer).__name__}: the C target exports fitted scikit-learn models "
            f"({', '.join(C_TRAINERS)})"
        )
    *transforms, (_, estimator) = trainer.pipeline.steps
    offset, scale = _scaler(transforms, n_features)
    kind = type(estimator).__name__
    if kind in ("DecisionTreeClassifier", "RandomForestClassifier"):
        trees = estimator.estimators_ if kind == "RandomForestClassifier" else [estimator]
        code = _forest_c(trees, len(estimator.classes_))
        ctype = "double"
    elif kind == "MLPClassifier":
        # emlearn's own converter compiles a test program into ./tmp as it converts; its code
        # generator alone writes nothing.
        activations = [estimator.activation] * (len(estimator.coefs_) - 1)
        code = c_generate_net_loadable(
            [*activations, estimator.out_activation_],
            estimator.coefs_,
            estimator.intercepts_,
            prefix="edgestack_model",
        )
        ctype = "float"
    else:
        raise ExportError(
            f"{kind}: emlearn has no C version of it here; export a model trained with "
            f"{', '.join(C_TRAINERS)}"
        )
    values = ", ".join(c_float(v, "f") for v in offset)
    factors = ", ".join(c_float(v, "f") for v in scale)
    return code, _CLASSIFY.format(ctype=ctype, offset=values, scale=factors)


def _scaler(transforms: list[tuple[str, Any]], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The offset and scale of the row transforms, float32 as the ONNX Scaler holds them."""
    offset = np.zeros(n_features, np.float32)
    scale = np.ones(n_features, np.float32)
    for i, (_, transform) in enumerate(transforms):
        if type(transform).__name__ != "StandardScaler":
            raise ExportError(
                f"preprocess[{i}] ({type(transform).__name__}): the C target has standardise "
                "only; train with preprocess standardise, or none"
            )
        if transform.with_mean:
            offset = np.asarray(transform.mean_, np.float32)
        if transform.with_std:
            scale = np.asarray(1.0 / transform.scale_, np.float32)
    return offset, scale


def _forest_c(trees: list[Any], n_classes: int) -> str:
    """The trees as `edgestack_model_predict(x, n)`: emlearn writes each tree, answering the
    index of the leaf a row reaches, and the leaves' class weights are summed as the ONNX
    graph sums them (each share over the number of trees, as float32, tree by tree), so a
    forest picks the class ONNX picks, not one of emlearn's 8-bit shares."""
    code, sums = [], []
    # Two classes: the graph holds the second's weight only and gives the first 1 minus it.
    columns = 1 if n_classes == 2 else n_classes
    for i, estimator in enumerate(trees):
        tree = estimator.tree_
        leaves = np.flatnonzero(tree.children_left < 0)
        # A class per leaf, so emlearn's majority of one tree is the leaf's index.
        value = np.zeros((tree.node_count, 1, len(leaves)))
        value[leaves, 0, np.arange(len(leaves))] = 1.0
        near = np.asarray(tree.threshold, np.float32)
        # scikit-learn and ONNX send float32 features `x <= t` left, emlearn `x < t`: each
        # threshold moves to the least float32 above it.
        above = np.where(near > tree.threshold, near, np.nextafter(near, np.float32(np.inf)))
        view = SimpleNamespace(
            tree_=SimpleNamespace(
                node_count=tree.node_count,
                children_left=tree.children_left,
                children_right=tree.children_right,
                feature=tree.feature,
                threshold=above.astype(np.float64),
                value=value,
            ),
            n_features_in_=estimator.n_features_in_,
            n_classes_=len(leaves),
        )
        name = f"es_tree{i}"
        wrapper = emlearn.convert(
            view, kind="DecisionTreeClassifier", method="inline", dtype="double", leaf_bits=0
        )
        code.append(wrapper.save(name=name, include_proba=False))
        weights = [_leaf_weights(tree.value[leaf, 0], len(trees))[-columns:] for leaf in leaves]
        rows = ", ".join("{" + ", ".join(c_float(w, "f") for w in row) + "}" for row in weights)
        code.append(f"static const float {name}_weights[{len(leaves)}][{columns}] = {{{rows}}};")
        sums.append(
            f"    {{\n        const float *w = {name}_weights[{name}_predict(x, n)];\n"
            f"        for (int c = 0; c < {columns}; c++) score[c] += w[c];\n    }}\n"
        )
    decide = (
        "    return score[0] > 1.0f - score[0];\n"
        if columns == 1
        else f"    int32_t best = 0;\n    for (int c = 1; c < {columns}; c++) "
        "if (score[c] > score[best]) best = c;\n    return best;\n"
    )
    code.append(
        "int32_t edgestack_model_predict(const double *x, int32_t n) {\n"
        f"    float score[{columns}] = {{0.0f}};\n{''.join(sums)}{decide}}}\n"
    )
    return "\n".join(code)


def _leaf_weights(value: np.ndarray, n_trees: int) -> np.ndarray:
    """A leaf's class weights as skl2onnx writes them: its class counts over their sum and
    over the number of trees, as float32."""
    total = float(sum(value))
    factor = 1.0 / n_trees / (total if total != 0.0 else 1.0)
    return np.asarray([w * factor for w in value], np.float32)


def _emlearn_headers(code: str) -> list[str]:
    """emlearn's headers `code` includes, with those they include in turn."""
    found: list[str] = []
    pending = re.findall(r'#include [<"](eml_\w+\.h)[>"]', code)
    while pending:
        name = pending.pop()
        if name not in found:
            found.append(name)
            text = (Path(emlearn.includedir) / name).read_text()
            pending.extend(re.findall(r'#include [<"](eml_\w+\.h)[>"]', text))
    return sorted(found)


_HEADER = """/* Generated by edgestack: a model and its window features, through emlearn. */
#ifndef EDGESTACK_MODEL_H
#define EDGESTACK_MODEL_H

#include <stdint.h>

#define EDGESTACK_CHANNELS {channels}
#define EDGESTACK_WINDOW {window}
#define EDGESTACK_HOP {hop} /* samples between the starts of two windows */
#define EDGESTACK_FEATURES {features}
#define EDGESTACK_CLASSES {classes}
#define EDGESTACK_RATE_HZ {rate}

/* The class names, in the order of the indices edgestack_predict returns. */
extern const char *const edgestack_labels[EDGESTACK_CLASSES];

/* The spec's feature columns of one window: EDGESTACK_CHANNELS x EDGESTACK_WINDOW samples,
   channel-major, into EDGESTACK_FEATURES floats. */
void edgestack_features(const float *window, float *features);

/* The class index of one row of features. */
int32_t edgestack_classify(const float *features);

/* The class index of one window (channel-major), as the hub's model gives it. */
int32_t edgestack_predict(const float *window);

#endif
"""

_SOURCE = """/* Generated by edgestack: the window features, then the model emlearn wrote. */
#include <math.h>
#include <stdint.h>

#include "{header}"

const char *const edgestack_labels[EDGESTACK_CLASSES] = {{{labels}}};
{model}
{features}
{classify}
void edgestack_features(const float *window, float *features) {{
    es_features(window, features);
}}

int32_t edgestack_predict(const float *window) {{
    float features[EDGESTACK_FEATURES];
    es_features(window, features);
    return edgestack_classify(features);
}}
"""

_CLASSIFY = """
static const float es_offset[EDGESTACK_FEATURES] = {{{offset}}};
static const float es_scale[EDGESTACK_FEATURES] = {{{scale}}};

int32_t edgestack_classify(const float *features) {{
    {ctype} x[EDGESTACK_FEATURES];
    for (int i = 0; i < EDGESTACK_FEATURES; i++) {{
        /* In float, as the ONNX graph standardises: the same inputs reach the same branches. */
        const float z = (features[i] - es_offset[i]) * es_scale[i];
        x[i] = ({ctype})z;
    }}
    return edgestack_model_predict(x, EDGESTACK_FEATURES);
}}
"""

_MAIN = """/* Runs the model over standard input, for tests: `runner features|classify|predict`
   reads float32 windows (or feature rows) and writes float32 features (or int32 classes);
   the seconds spent go to standard error. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "{header}"

#define ES_SAMPLES (EDGESTACK_CHANNELS * EDGESTACK_WINDOW)

int main(int argc, char **argv) {{
    static float in[ES_SAMPLES > EDGESTACK_FEATURES ? ES_SAMPLES : EDGESTACK_FEATURES];
    float features[EDGESTACK_FEATURES];
    if (argc != 2) return 2;
    const int classify = strcmp(argv[1], "classify") == 0;
    const int size = classify ? EDGESTACK_FEATURES : ES_SAMPLES;
    double seconds = 0.0;
    while (fread(in, sizeof(float), size, stdin) == (size_t)size) {{
        const clock_t start = clock();
        if (strcmp(argv[1], "features") == 0) {{
            edgestack_features(in, features);
            seconds += (double)(clock() - start) / CLOCKS_PER_SEC;
            fwrite(features, sizeof(float), EDGESTACK_FEATURES, stdout);
        }} else {{
            const int32_t index = classify ? edgestack_classify(in) : edgestack_predict(in);
            seconds += (double)(clock() - start) / CLOCKS_PER_SEC;
            fwrite(&index, sizeof(index), 1, stdout);
        }}
    }}
    fprintf(stderr, "%.9f", seconds);
    return 0;
}}
"""
