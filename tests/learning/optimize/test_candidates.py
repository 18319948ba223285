import dataclasses

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgestack.learning import FitResult
from edgestack.learning.optimize import build

from .conftest import baseline_of


@pytest.mark.parametrize("name", ["int8_dynamic", "int8_static"])
def test_int8_shrinks_an_mlp_and_keeps_its_accuracy(mlp: FitResult, name: str) -> None:
    candidate = build(name, baseline_of(mlp), mlp.test.x, mlp.test.y, runs=5)

    assert candidate.measurement is not None, candidate.problem
    assert candidate.measurement.footprint.model_bytes * 3 < len(mlp.onnx)
    assert candidate.measurement.accuracy >= mlp.evaluation.accuracy - 0.01


@pytest.mark.parametrize("name", ["fp32", "fp16"])
def test_float_candidates_predict_as_the_parent_does(cnn: FitResult, name: str) -> None:
    candidate = build(name, baseline_of(cnn), cnn.test.x, cnn.test.y, runs=5)

    assert candidate.measurement is not None, candidate.problem
    assert candidate.measurement.accuracy == pytest.approx(cnn.evaluation.accuracy, abs=0.005)


@pytest.mark.parametrize("name", ["fp16", "int8_dynamic", "int8_static", "pruned"])
def test_a_forest_is_reported_not_applicable_with_the_reason(forest: FitResult, name: str) -> None:
    candidate = build(name, baseline_of(forest), forest.test.x, forest.test.y, runs=5)

    assert candidate.model is None
    assert candidate.problem is not None
    assert candidate.problem.startswith("not applicable: ")


def test_a_candidate_that_cannot_be_built_is_reported_not_raised(mlp: FitResult) -> None:
    broken = dataclasses.replace(baseline_of(mlp), onnx=b"not a model")

    candidate = build("int8_static", broken, mlp.test.x, mlp.test.y, runs=5)

    assert candidate.measurement is None
    assert candidate.problem is not None
    assert candidate.problem.startswith("failed: ")


def test_pruning_a_net_zeroes_most_weights_and_fine_tuning_keeps_it_accurate(
    cnn: FitResult,
) -> None:
    candidate = build("pruned", baseline_of(cnn), cnn.test.x, cnn.test.y, runs=5)

    assert candidate.model is not None and candidate.measurement is not None, candidate.problem
    weights = [
        numpy_helper.to_array(t)
        for t in onnx.load_from_string(candidate.model).graph.initializer
        if len(t.dims) >= 2
    ]
    zeros = sum(int(np.sum(w == 0)) for w in weights) / sum(w.size for w in weights)
    assert zeros >= 0.55
    assert candidate.measurement.accuracy >= cnn.evaluation.accuracy - 0.05


def test_distilling_a_net_gives_a_smaller_student(cnn: FitResult) -> None:
    candidate = build("distilled", baseline_of(cnn), cnn.test.x, cnn.test.y, runs=5)

    assert candidate.measurement is not None, candidate.problem
    assert candidate.measurement.footprint.model_bytes < len(cnn.onnx)
    assert candidate.measurement.accuracy > 0.8


@pytest.mark.parametrize("model", ["rocket", "cnn1d"])
def test_int8_static_quantises_the_convolutions_and_keeps_the_accuracy(
    model: str, request: pytest.FixtureRequest
) -> None:
    fitted: FitResult = request.getfixturevalue(model)

    candidate = build("int8_static", baseline_of(fitted), fitted.test.x, fitted.test.y, runs=5)

    assert candidate.measurement is not None and candidate.model is not None, candidate.problem
    assert candidate.measurement.accuracy >= fitted.evaluation.accuracy - 0.01
    graph = onnx.load_from_string(candidate.model).graph
    made_by = {name: node for node in graph.node for name in node.output}
    convolutions = [node for node in graph.node if node.op_type == "Conv"]
    assert convolutions
    assert all(made_by[node.input[1]].op_type == "DequantizeLinear" for node in convolutions)


def test_int8_static_keeps_what_follows_minirockets_comparisons_in_float(
    rocket: FitResult,
) -> None:
    candidate = build("int8_static", baseline_of(rocket), rocket.test.x, rocket.test.y, runs=5)

    assert candidate.model is not None, candidate.problem
    graph = onnx.load_from_string(candidate.model).graph
    made_by = {name: node for node in graph.node for name in node.output}
    products = [node for node in graph.node if node.op_type in ("MatMul", "Gemm")]
    assert any(node.op_type == "Greater" for node in graph.node)
    assert products  # the means and the head
    for node in products:
        assert all(
            name not in made_by or made_by[name].op_type != "DequantizeLinear"
            for name in node.input
        )


def test_half_precision_runs_minirocket_with_its_counts_in_float(rocket: FitResult) -> None:
    candidate = build("fp16", baseline_of(rocket), rocket.test.x, rocket.test.y, runs=5)

    assert candidate.measurement is not None, candidate.problem
    assert candidate.measurement.accuracy >= rocket.evaluation.accuracy - 0.01
