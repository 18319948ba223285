"""Serving bigger models to devices: verified bundles only, answers as the bundle's own
predictor gives them, and requests that do not fit refused by the field at fault."""

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from bundles import random_bundle
from edgestack.bundle import Bundle, BundleError, InputSpec, SignatureError, TrustedKeys, digest
from edgestack.hub.signing import HubKeys
from edgestack.predictor import OnnxPredictor
from edgestack.processing import vibration_spec, with_extractors
from edgestack.protocol import BundleRef, InferenceRequest, RowsKind
from edgestack.serving import ModelServer, ServingError, UnknownModel, serving_providers

LABELS = ("normal", "imbalance", "bearing_wear")
RAW_SPEC = with_extractors(vibration_spec(window=64, hop=64), ["raw"])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> HubKeys:
    return HubKeys(tmp_path_factory.mktemp("hub-keys"))


def _signed(
    keys: HubKeys, seed: int, spec: InputSpec | None = None, labels: Sequence[str] = LABELS
) -> tuple[Bundle, bytes]:
    bundle = random_bundle(seed, name="big", labels=labels, spec=spec)
    signed = Bundle(keys.sign(bundle.manifest, ttl=timedelta(days=1)), bundle.model)
    return signed, signed.pack()


def _server(keys: HubKeys) -> ModelServer:
    return ModelServer("edge", TrustedKeys(keys.public()))


def _rows(width: int, count: int = 16, seed: int = 7) -> list[list[float]]:
    rows = np.random.default_rng(seed).normal(size=(count, width)).astype(np.float32)
    return rows.tolist()


def test_answers_are_those_of_the_bundles_own_predictor(keys: HubKeys) -> None:
    bundle, data = _signed(keys, seed=1)
    server = _server(keys)
    ref = server.load(data, digest(data))
    rows = _rows(len(bundle.manifest.input.features))

    answer = server.answer(InferenceRequest(model=ref, rows=rows))

    labels = bundle.manifest.labels
    indices, probabilities = OnnxPredictor(bundle.model, labels).predict(np.array(rows))
    assert answer.labels == [labels[i] for i in indices]
    assert answer.confidences == pytest.approx(probabilities.max(axis=1).tolist())
    assert answer.tier == "edge"
    assert server.models == [ref]


def test_a_model_of_raw_windows_answers_raw_rows(keys: HubKeys) -> None:
    _, data = _signed(keys, seed=2, spec=RAW_SPEC)
    server = _server(keys)
    ref = server.load(data, digest(data))

    answer = server.answer(
        InferenceRequest(model=ref, input="raw", rows=_rows(len(RAW_SPEC.features), count=3))
    )

    assert len(answer.labels) == 3 and set(answer.labels) <= set(LABELS)


def test_a_tampered_bundle_is_refused_and_not_served(keys: HubKeys) -> None:
    _, data = _signed(keys, seed=3)
    server = _server(keys)

    with pytest.raises(BundleError, match="digest mismatch"):
        server.load(data[:-1] + bytes([data[-1] ^ 1]), digest(data))

    assert server.models == []


def test_a_bundle_signed_by_a_key_the_server_does_not_trust_is_refused(
    keys: HubKeys, tmp_path: Path
) -> None:
    _, data = _signed(HubKeys(tmp_path / "other-hub"), seed=4)
    server = _server(keys)

    with pytest.raises(SignatureError, match="unknown_key"):
        server.load(data, digest(data))

    assert server.models == []


def test_an_unsigned_bundle_is_refused(keys: HubKeys) -> None:
    data = random_bundle(5, name="big", labels=LABELS).pack()

    with pytest.raises(SignatureError, match="unsigned"):
        _server(keys).load(data, digest(data))


def test_a_bundle_whose_labels_no_answer_can_carry_is_refused(keys: HubKeys) -> None:
    _, data = _signed(keys, seed=6, labels=("normal", "w" * 65))

    with pytest.raises(ValueError, match="label"):
        _server(keys).load(data, digest(data))


@pytest.fixture(scope="module")
def served(keys: HubKeys) -> tuple[ModelServer, BundleRef, int]:
    bundle, data = _signed(keys, seed=8)
    server = _server(keys)
    return server, server.load(data, digest(data)), len(bundle.manifest.input.features)


def test_a_model_not_served_is_refused_naming_the_model(
    served: tuple[ModelServer, BundleRef, int],
) -> None:
    server, ref, width = served
    other = ref.model_copy(update={"digest": "0" * 64})

    with pytest.raises(UnknownModel, match="model: big v1") as refused:
        server.answer(InferenceRequest(model=other, rows=_rows(width)))

    assert refused.value.field == "model"


@pytest.mark.parametrize(("kind", "extra", "field"), [("features", 1, "rows"), ("raw", 0, "input")])
def test_rows_the_model_cannot_take_are_refused_naming_the_field(
    served: tuple[ModelServer, BundleRef, int], kind: RowsKind, extra: int, field: str
) -> None:
    server, ref, width = served

    with pytest.raises(ServingError, match=f"^{field}: ") as refused:
        server.answer(InferenceRequest(model=ref, input=kind, rows=_rows(width + extra)))

    assert refused.value.field == field


def test_the_cpu_is_always_a_provider_to_serve_with_and_the_last() -> None:
    assert serving_providers()[-1] == "CPUExecutionProvider"
