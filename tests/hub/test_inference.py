"""The hub as the cloud tier: it answers offloaded windows with the bundles it holds, for an
operator any, for a device only the model its offload policy names."""

import base64

import httpx
import numpy as np
import pytest

from bundles import random_bundle
from edgestack.bundle import Bundle
from edgestack.hub.context import HubContext
from edgestack.hub.store import devices
from edgestack.predictor import OnnxPredictor
from edgestack.processing import vibration_spec
from edgestack.protocol import BundleRef, OffloadPolicy

from .factories import ADMIN, Device

pytestmark = pytest.mark.anyio

WIDTH = len(vibration_spec().features)
ROWS = np.random.default_rng(3).normal(size=(6, WIDTH)).round(3).tolist()


async def _registered(client: httpx.AsyncClient, seed: int = 1) -> BundleRef:
    packed = random_bundle(seed, name="big", labels=("normal", "imbalance", "wear")).pack()
    response = await client.post(
        "/api/v1/models",
        content=packed,
        headers={**ADMIN, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return BundleRef.model_validate(response.json())


def _offload_to(hub: HubContext, device_id: str, model: BundleRef) -> None:
    with hub.db.writer() as session:
        devices.steer(session, device_id, offload=OffloadPolicy(model=model, tier="cloud"))
        session.commit()


async def _infer(
    client: httpx.AsyncClient, model: BundleRef, headers: dict[str, str], rows: object = ROWS
) -> httpx.Response:
    body = {"model": model.model_dump(), "rows": rows}
    return await client.post("/api/v1/infer", json=body, headers=headers)


async def test_an_operator_gets_the_bundles_own_answer_from_the_cloud_tier(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    model = await _registered(client)
    stored = Bundle.unpack(hub.bundles.path(model.digest).read_bytes())
    own = OnnxPredictor(stored.model, stored.manifest.labels)

    response = await _infer(client, model, ADMIN)

    assert response.status_code == 200, response.text
    answer = response.json()
    indices, _ = own.predict(np.asarray(ROWS, dtype=np.float32))
    assert answer["labels"] == [own.labels[i] for i in indices]
    assert answer["tier"] == "cloud"
    assert len(answer["confidences"]) == len(ROWS)


async def test_a_device_may_ask_only_for_the_model_its_offload_policy_names(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    named, other = await _registered(client, 1), await _registered(client, 2)

    before = await _infer(client, named, device.auth)
    _offload_to(hub, device.device_id, named)
    allowed = await _infer(client, named, device.auth)
    refused = await _infer(client, other, device.auth)

    assert before.status_code == 403
    assert "offload policy names (none)" in before.json()["detail"]
    assert allowed.status_code == 200, allowed.text
    assert refused.status_code == 403
    assert "big v1" in refused.json()["detail"]


async def test_a_request_the_model_cannot_take_is_refused_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    model = await _registered(client)
    missing = model.model_copy(update={"digest": "0" * 64})

    narrow = await _infer(client, model, ADMIN, rows=[[0.5] * 3])
    raw = await client.post(
        "/api/v1/infer",
        json={"model": model.model_dump(), "input": "raw", "rows": ROWS},
        headers=ADMIN,
    )
    unknown = await _infer(client, missing, ADMIN)

    assert narrow.status_code == 422
    assert narrow.json()["detail"].startswith("rows: rows of 3 values")
    assert raw.status_code == 422
    assert raw.json()["detail"].startswith("input: ")
    assert unknown.status_code == 404
    assert "register it" in unknown.json()["detail"]


async def test_a_policy_naming_a_model_the_hub_cannot_serve_is_refused(
    client: httpx.AsyncClient, device: Device
) -> None:
    model = await _registered(client)
    path = f"/api/v1/devices/{device.device_id}/desired"

    def patch(ref: BundleRef) -> dict[str, object]:
        return {"offload": {"model": ref.model_dump(), "tier": "cloud", "threshold": 0.2}}

    unknown = await client.patch(
        path, json=patch(model.model_copy(update={"name": "nope"})), headers=ADMIN
    )
    other = await client.patch(
        path, json=patch(model.model_copy(update={"digest": "0" * 64})), headers=ADMIN
    )
    right = await client.patch(path, json=patch(model), headers=ADMIN)

    assert unknown.status_code == 404
    assert unknown.json()["detail"].startswith("offload.model: model 'nope' is not registered")
    assert other.status_code == 409
    assert other.json()["detail"].startswith("offload.model: big v1 is registered as bundle")
    assert right.status_code == 200, right.text
    assert right.json()["offload"]["threshold"] == 0.2


async def test_a_tensor_for_a_model_that_is_no_split_tail_is_refused_with_422(
    client: httpx.AsyncClient,
) -> None:
    model = await _registered(client)
    zeros = np.zeros((2, 4, 3), dtype="<f4").tobytes()
    tensors = {"dtype": "float32", "shape": [4, 3], "data": base64.b64encode(zeros).decode()}
    ragged = {**tensors, "data": base64.b64encode(zeros[:-4]).decode()}

    refused = await client.post(
        "/api/v1/infer", json={"model": model.model_dump(), "tensors": tensors}, headers=ADMIN
    )
    invalid = await client.post(
        "/api/v1/infer", json={"model": model.model_dump(), "tensors": ragged}, headers=ADMIN
    )

    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("tensors: big v1 is no split net's tail")
    assert invalid.status_code == 422
    assert "no whole number of float32 windows" in invalid.json()["detail"]
