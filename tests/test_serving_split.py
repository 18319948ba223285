"""A split net's tail served as any model: it takes its head's tensors instead of rows and
answers as the whole net would, and a tensor for a model that is no tail is refused."""

from datetime import timedelta

import numpy as np
import pytest

from bundles import cut_net, random_bundle, split_net, split_rows
from edgestack.bundle import Bundle, TrustedKeys, digest
from edgestack.hub.signing import HubKeys
from edgestack.learning.zoo import Cnn1dExits
from edgestack.predictor import onnx_session
from edgestack.protocol import BundleRef, InferenceRequest
from edgestack.serving import ModelServer, ServingError, refusal, tensors_of


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> HubKeys:
    return HubKeys(tmp_path_factory.mktemp("hub-keys"))


@pytest.fixture(scope="module")
def nets() -> dict[str, tuple[Cnn1dExits, Bundle, Bundle]]:
    trainer, head, tail = split_net(1)
    return {
        "float32": (trainer, head, tail),
        "int8": (trainer, *cut_net(trainer, int8_from=split_rows(16, seed=1))),
    }


def _served(keys: HubKeys, bundle: Bundle) -> tuple[ModelServer, BundleRef]:
    signed = Bundle(keys.sign(bundle.manifest, ttl=timedelta(days=1)), bundle.model)
    data = signed.pack()
    server = ModelServer("edge", TrustedKeys(keys.public()))
    return server, server.load(data, digest(data))


def _head(head: Bundle, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = onnx_session(head.model)
    exit_probabilities, tensor = session.run(None, {"features": rows})
    return exit_probabilities, tensor


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_the_tail_answers_the_heads_tensors_as_the_whole_net(
    keys: HubKeys, nets: dict[str, tuple[Cnn1dExits, Bundle, Bundle]], dtype: str
) -> None:
    trainer, head, tail = nets[dtype]
    server, ref = _served(keys, tail)
    rows = split_rows(12, seed=9)
    _, tensor = _head(head, rows)
    plan = head.manifest.split
    assert plan is not None

    answer = server.answer(InferenceRequest(model=ref, tensors=tensors_of(tensor, plan)))

    whole = trainer.predict_proba(rows)
    assert tensor.dtype == np.dtype(dtype)
    if dtype == "float32":
        assert answer.labels == [tail.manifest.labels[i] for i in whole.argmax(axis=1)]
        assert answer.confidences == pytest.approx(whole.max(axis=1).tolist(), abs=1e-4)
    else:
        # int8 rounds the tensor: the answers stay close to the whole net's, not equal.
        assert answer.confidences == pytest.approx(whole.max(axis=1).tolist(), abs=0.1)
    assert len(answer.labels) == len(rows)


def test_a_tensor_for_a_model_that_is_no_tail_is_refused_naming_the_field(
    keys: HubKeys, nets: dict[str, tuple[Cnn1dExits, Bundle, Bundle]]
) -> None:
    _, head, _ = nets["float32"]
    plan = head.manifest.split
    assert plan is not None
    server, ref = _served(keys, random_bundle(2, name="flat"))
    _, tensor = _head(head, split_rows(3, seed=1))

    with pytest.raises(ServingError) as refused:
        server.answer(InferenceRequest(model=ref, tensors=tensors_of(tensor, plan)))

    assert refused.value.field == "tensors"
    assert "no split net's tail" in str(refused.value)
    assert refusal(refused.value) == (422, str(refused.value))


def test_a_tail_refuses_rows_and_tensors_of_another_cut(
    keys: HubKeys, nets: dict[str, tuple[Cnn1dExits, Bundle, Bundle]]
) -> None:
    _, head, tail = nets["int8"]
    _, float_head, _ = nets["float32"]
    plan = head.manifest.split
    assert plan is not None and plan.scale is not None
    server, ref = _served(keys, tail)
    rows = split_rows(3, seed=1)
    _, tensor = _head(head, rows)
    _, floats = _head(float_head, rows)
    foreign = plan.model_copy(update={"scale": plan.scale * 2})

    asked = {
        "rows": InferenceRequest(model=ref, rows=rows.tolist()),
        "float32": InferenceRequest(model=ref, tensors=tensors_of(floats, plan)),
        "scale": InferenceRequest(model=ref, tensors=tensors_of(tensor, foreign)),
    }
    fields = {}
    for case, request in asked.items():
        with pytest.raises(ServingError) as refused:
            server.answer(request)
        fields[case] = refused.value.field

    assert fields == {"rows": "rows", "float32": "tensors", "scale": "tensors.scale"}
