import httpx
import pytest

from edgestack.bundle import Bundle, digest
from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import ModelRow
from edgestack.protocol import ModelView

from .factories import ADMIN, count, packed_bundle

pytestmark = pytest.mark.anyio

RAW = {**ADMIN, "Content-Type": "application/octet-stream"}


def _files(hub: HubContext) -> list[str]:
    return sorted(p.name for p in hub.bundles.root.iterdir())


async def test_a_bundle_is_registered_once(client: httpx.AsyncClient, hub: HubContext) -> None:
    data = packed_bundle()

    created = await client.post(
        "/v1/models", content=data, params={"digest": digest(data)}, headers=RAW
    )
    again = await client.post("/v1/models", content=data, headers=RAW)

    assert created.status_code == 201
    view = ModelView.model_validate_json(created.content)
    assert (view.name, view.version, view.digest, view.size_bytes) == (
        "motor",
        1,
        digest(data),
        len(data),
    )
    assert view.manifest == Bundle.unpack(data).manifest
    assert again.status_code == 200
    assert again.json() == created.json()
    assert _files(hub) == [f"{digest(data)}.bundle"]
    listed = await client.get("/v1/models", headers=ADMIN)
    assert listed.json() == [created.json()]


async def test_a_digest_mismatch_is_400_and_stores_nothing(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    data = packed_bundle()

    response = await client.post(
        "/v1/models", content=data, params={"digest": "0" * 64}, headers=RAW
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("digest mismatch: expected " + "0" * 64)
    assert count(hub, ModelRow) == 0
    assert _files(hub) == []


async def test_a_model_swapped_inside_the_tar_is_400(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    genuine = Bundle.unpack(packed_bundle())
    tampered = Bundle(manifest=genuine.manifest, model=b"another model").pack()

    response = await client.post("/v1/models", content=tampered, headers=RAW)

    assert response.status_code == 400
    assert "model.onnx does not match manifest.model_sha256" in response.json()["detail"]
    assert count(hub, ModelRow) == 0
    assert _files(hub) == []


async def test_bytes_that_are_no_bundle_are_400(client: httpx.AsyncClient, hub: HubContext) -> None:
    response = await client.post("/v1/models", content=b"not a tar at all", headers=RAW)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("bundle is not a tar archive")
    assert _files(hub) == []


async def test_other_bytes_under_a_taken_name_and_version_are_409(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    first = packed_bundle(model=b"first")
    await client.post("/v1/models", content=first, headers=RAW)

    response = await client.post("/v1/models", content=packed_bundle(model=b"second"), headers=RAW)

    assert response.status_code == 409
    assert "bump manifest.version" in response.json()["detail"]
    assert count(hub, ModelRow) == 1
    assert _files(hub) == [f"{digest(first)}.bundle"]


async def test_models_are_listed_by_name_and_version(client: httpx.AsyncClient) -> None:
    for name, version in (("motor", 2), ("pump", 1), ("motor", 1)):
        await client.post("/v1/models", content=packed_bundle(name, version), headers=RAW)

    listed = await client.get("/v1/models", headers=ADMIN)

    assert [(m["name"], m["version"]) for m in listed.json()] == [
        ("motor", 1),
        ("motor", 2),
        ("pump", 1),
    ]
