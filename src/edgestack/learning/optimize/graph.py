"""Optimisers that rewrite the ONNX graph alone: ONNX Runtime's graph optimisations, half
precision, and 8-bit integer weights (dynamic) or weights and activations (static, QDQ).

Graphs from skl2onnx may hold `ai.onnx.ml` operators (Scaler, tree ensembles). They stay in
float32; the numeric operators around them are converted. A graph without any (a forest) has
nothing to convert, and says so.
"""

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
import onnx
import onnxruntime as ort
from onnxconverter_common import float16
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from pydantic import Field

from edgestack.learning.optimize.optimiser import OPTIMISERS, Baseline, NotApplicable

__all__ = ["Fp16", "Fp32", "Int8Dynamic", "Int8Static"]

# Operators whose weights carry the cost of a net.
_WEIGHTED = ("Conv", "MatMul", "Gemm")
# What static int8 runs in integers: the weighted operators and what sits between them, so
# activations stay int8 from one convolution to the next (without Relu and MaxPool the model
# was slower than float32 on batch 1). Softmax stays float: its output is the probabilities.
_STATIC_INT8 = (*_WEIGHTED, "Relu", "MaxPool")
# Comparisons turn values into counts (MiniRocket's proportions of positive values). What
# follows them (the means, a linear head over thousands of such features) stays float:
# rounding each feature to 8 bits adds up across the head. In such a graph the convolutions'
# outputs stay float too: each is compared with biases at quantiles of its own values, and one
# 8-bit scale shared by all the kernels of a convolution moved features across them (OSULeaf
# lost 3 points). Their weights and inputs are int8.
_COMPARISONS = ("Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Equal")
# ai.onnx.ml transforms that always give float tensors; ONNX shape inference does not type
# their outputs, and the fp16 converter casts only outputs it knows to be float.
_FLOAT_ML_OPS = ("Scaler", "Normalizer", "FeatureVectorizer")
_ML_DOMAIN = "ai.onnx.ml"


@OPTIMISERS.register("fp32")
class Fp32:
    """ONNX Runtime's extended graph optimisations (constant folding, fusions), saved, so the
    device does not redo them at every start."""

    def apply(self, baseline: Baseline) -> bytes:
        return _ort_optimised(baseline.onnx, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)


@OPTIMISERS.register("fp16")
class Fp16:
    """Weights and arithmetic in half precision; input and output stay float32, and so does
    whatever follows a comparison (see `Int8Static`)."""

    def apply(self, baseline: Baseline) -> bytes:
        model = onnx.load_from_string(_basic(baseline.onnx))
        if not _weighted_nodes(model):
            raise NotApplicable(_nothing_to_convert(model, "half precision"))
        with warnings.catch_warnings():
            # Weights too small for half precision are clamped to its smallest normal value,
            # and it warns once per weight; the measured accuracy judges the result.
            warnings.filterwarnings("ignore", "the float32 number", UserWarning)
            half = float16.convert_float_to_float16(
                model, keep_io_types=True, node_block_list=_after_comparisons(model)
            )
        return half.SerializeToString()


@OPTIMISERS.register("int8_dynamic")
class Int8Dynamic:
    """int8 weights; activations quantised at run time from each call's own range. Whatever
    follows a comparison stays float (see `Int8Static`)."""

    def apply(self, baseline: Baseline) -> bytes:
        source = _quantisable(baseline)
        with tempfile.TemporaryDirectory() as tmp:
            given, out = Path(tmp, "in.onnx"), Path(tmp, "out.onnx")
            given.write_bytes(source)
            quantize_dynamic(
                given,
                out,
                op_types_to_quantize=list(_WEIGHTED),
                weight_type=QuantType.QInt8,
                nodes_to_exclude=_after_comparisons(onnx.load_from_string(source)),
            )
            return out.read_bytes()


@OPTIMISERS.register("int8_static")
class Int8Static:
    """int8 weights (per channel) and activations, their ranges calibrated on up to
    `calibration_rows` training rows; QDQ format, which ONNX Runtime fuses into integer
    kernels. Whatever follows a comparison stays float, and so do the convolutions' outputs in a
    graph that compares them."""

    def __init__(self, calibration_rows: Annotated[int, Field(ge=1)] = 512) -> None:
        self.calibration_rows = calibration_rows

    def apply(self, baseline: Baseline) -> bytes:
        source = _quantisable(baseline)
        rng = np.random.default_rng(baseline.lineage.seed)
        n = min(self.calibration_rows, len(baseline.x_train))
        rows = baseline.x_train[rng.choice(len(baseline.x_train), n, replace=False)]
        with tempfile.TemporaryDirectory() as tmp:
            given, ready, out = (Path(tmp, name) for name in ("in.onnx", "pre.onnx", "out.onnx"))
            given.write_bytes(source)
            # Symbolic shape inference stops at ai.onnx.ml operators; ONNX's own suffices here.
            quant_pre_process(given, ready, skip_symbolic_shape=True)
            after = _after_comparisons(onnx.load(ready))
            quantize_static(
                ready,
                out,
                _Rows(_input_name(source), rows),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(_STATIC_INT8),
                per_channel=True,
                nodes_to_exclude=after,
                extra_options={"OpTypesToExcludeOutputQuantization": ["Conv"]} if after else {},
            )
            return out.read_bytes()


class _Rows(CalibrationDataReader):
    """Calibration batches of 64 rows."""

    def __init__(self, name: str, rows: np.ndarray) -> None:
        self._batches: Iterator[np.ndarray] = iter(np.array_split(rows, -(-len(rows) // 64)))
        self._name = name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self._name: np.ascontiguousarray(batch, np.float32)}


def _ort_optimised(model: bytes, level: ort.GraphOptimizationLevel) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "optimised.onnx")
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.optimized_model_filepath = str(out)
        ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        optimised = onnx.load(out)
    # ONNX Runtime drops the model's metadata (the labels) when it saves.
    optimised.metadata_props.extend(onnx.load_from_string(model).metadata_props)
    return optimised.SerializeToString()


def _basic(model: bytes) -> bytes:
    """Constants folded, no-op casts gone, standard operators only, and the outputs of
    ai.onnx.ml transforms typed: what the converters and quantisers below read best."""
    optimised = _ort_optimised(model, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    return _typed_ml_outputs(onnx.load_from_string(optimised)).SerializeToString()


def _quantisable(baseline: Baseline) -> bytes:
    source = _basic(baseline.onnx)
    model = onnx.load_from_string(source)
    if not _weighted_nodes(model):
        raise NotApplicable(_nothing_to_convert(model, "8-bit integers"))
    return source


def _after_comparisons(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes that take, directly or not, the output of a comparison."""
    tainted: set[str] = set()
    after = []
    for node in model.graph.node:  # in topological order, as ONNX requires
        if node.op_type in _COMPARISONS or tainted.intersection(node.input):
            tainted.update(node.output)
            after.append(node.name)
    return after


def _weighted_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Standard Conv, MatMul and Gemm nodes with constant weights."""
    constants = {i.name for i in model.graph.initializer}
    return [
        node
        for node in model.graph.node
        if node.domain in ("", "ai.onnx")
        and node.op_type in _WEIGHTED
        and constants.intersection(node.input)
    ]


def _nothing_to_convert(model: onnx.ModelProto, target: str) -> str:
    ops = sorted({n.op_type for n in model.graph.node if n.domain == _ML_DOMAIN})
    held = f"; its model is in {_ML_DOMAIN} operators ({', '.join(ops)}), kept float" if ops else ""
    return f"no Conv, MatMul or Gemm with weights to turn into {target}{held}"


def _typed_ml_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    typed = {v.name for v in model.graph.value_info} | {o.name for o in model.graph.output}
    for node in model.graph.node:
        if node.domain == _ML_DOMAIN and node.op_type in _FLOAT_ML_OPS:
            for name in node.output:
                if name not in typed:
                    model.graph.value_info.append(
                        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                    )
    return model


def _input_name(model: bytes) -> str:
    return str(onnx.load_from_string(model).graph.input[0].name)
