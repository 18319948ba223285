"""The joint-inference wire: offload policies in the twin, requests and answers of a server."""

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from edgestack.protocol import (
    BundleRef,
    DesiredState,
    InferenceAnswer,
    InferenceRequest,
    IntermediateTensors,
    OffloadPolicy,
)

MODEL = BundleRef(name="big", version=2, digest="a" * 64)


def _policy(**changes: Any) -> OffloadPolicy:
    fields: dict[str, Any] = {"model": MODEL, "server": "http://edge-1:8090", **changes}
    return OffloadPolicy.model_validate(fields)


def test_an_offload_policy_reaches_only_agents_that_speak_protocol_2() -> None:
    state = DesiredState(version=3, offload=_policy(threshold=0.4))

    old = state.for_protocol(1)
    new = state.for_protocol(2)

    assert "offload" not in old
    assert DesiredState.model_validate(new).offload == state.offload


def test_a_desired_state_without_a_policy_says_nothing_of_offloading() -> None:
    assert "offload" not in DesiredState(version=1).for_protocol(2)


def test_a_policy_defaults_to_the_confidence_gate_and_falling_back_offline() -> None:
    policy = _policy()

    assert (policy.gate, policy.threshold, policy.offline) == ("confidence", None, "fallback")
    assert _policy(tier="cloud", server=None).server is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"server": None}, "server"),
        ({"server": "edge-1:8090"}, "server"),
        ({"target_fraction": 0}, "target_fraction"),
        ({"target_fraction": 1.5}, "target_fraction"),
        ({"threshold": 1.2}, "threshold"),
        ({"gate": "loss"}, "gate"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_a_bad_policy_is_refused_naming_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        _policy(**changes)


def test_a_request_holds_rows_of_one_width() -> None:
    with pytest.raises(ValidationError, match=r"rows\[1\] has 2 values"):
        InferenceRequest(model=MODEL, rows=[[1.0, 2.0, 3.0], [1.0, 2.0]])


def test_a_request_of_too_many_values_is_refused_with_the_fix() -> None:
    with pytest.raises(ValidationError, match="fewer rows"):
        InferenceRequest(model=MODEL, rows=[[0.0] * 100_000] * 11)


def test_a_request_and_an_answer_survive_the_wire() -> None:
    request = InferenceRequest(model=MODEL, rows=[[0.5, -1.0]], input="raw")
    answer = InferenceAnswer(labels=["worn"], confidences=[0.9], tier="cloud", latency_ms=1.5)

    assert InferenceRequest.model_validate_json(request.model_dump_json()) == request
    assert InferenceAnswer.model_validate_json(answer.model_dump_json()) == answer


ZEROS = base64.b64encode(bytes(2 * 6)).decode()  # two int8 windows of shape (2, 3)


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({}, "rows: empty; send at least one row, or a split tail's tensors"),
        (
            {
                "rows": [[1.0]],
                "tensors": {
                    "dtype": "int8",
                    "shape": [2, 3],
                    "data": ZEROS,
                    "scale": 0.1,
                    "zero_point": 0,
                },
            },
            "tensors: sent with rows",
        ),
        ({"tensors": {"dtype": "int8", "shape": [2, 3], "data": ZEROS}}, "give both for an int8"),
        ({"tensors": {"dtype": "float32", "shape": [2, 3], "data": ZEROS}}, "no whole number"),
        ({"tensors": {"dtype": "float32", "shape": [1], "data": "AAA"}}, "no base64"),
    ],
)
def test_a_request_holds_rows_or_whole_tensors(body: dict[str, Any], refused: str) -> None:
    with pytest.raises(ValidationError, match=refused):
        InferenceRequest.model_validate({"model": MODEL.model_dump(), **body})


def test_a_request_of_tensors_survives_the_wire() -> None:
    tensors = IntermediateTensors(dtype="int8", shape=[2, 3], data=ZEROS, scale=0.1, zero_point=-4)
    request = InferenceRequest(model=MODEL, tensors=tensors)

    read = InferenceRequest.model_validate_json(request.model_dump_json())

    assert read == request and read.tensors is not None
    assert read.tensors.windows == 2 and read.tensors.raw() == bytes(12)
