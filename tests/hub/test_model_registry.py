import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edgestack.bundle import Bundle, BundleStore, Footprint, TrustedKeys, digest
from edgestack.hub.context import HubContext
from edgestack.hub.signing import HubKeys
from edgestack.hub.store import Database, registry
from edgestack.hub.store.db import sqlite_url
from edgestack.hub.store.tables import ModelRow
from edgestack.protocol import ModelView

from .factories import ADMIN, SPEC, count, packed_bundle

pytestmark = pytest.mark.anyio

RAW = {**ADMIN, "Content-Type": "application/octet-stream"}


def _files(hub: HubContext) -> list[str]:
    return sorted(p.name for p in hub.bundles.root.iterdir())


async def test_a_bundle_is_registered_once_signed_as_the_next_version(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    data = packed_bundle(version=7)

    created = await client.post(
        "/api/v1/models", content=data, params={"digest": digest(data)}, headers=RAW
    )
    again = await client.post("/api/v1/models", content=data, headers=RAW)

    assert created.status_code == 201, created.text
    view = ModelView.model_validate_json(created.content)
    stored = hub.bundles.path(view.digest).read_bytes()
    assert (view.name, view.version, view.size_bytes) == ("motor", 1, len(stored))
    assert digest(stored) == view.digest != digest(data)
    signed = Bundle.unpack(stored).manifest
    assert view.manifest == signed
    assert signed.key_id == hub.keys.public()[-1].key_id
    assert TrustedKeys(hub.keys.public()).verify(signed) is False
    uploaded = Bundle.unpack(data).manifest
    unsigned = {"version", "key_id", "key_chain", "expires_at", "signature"}
    assert signed.model_dump(exclude=unsigned) == uploaded.model_dump(exclude=unsigned)
    assert again.status_code == 200
    assert again.json() == created.json()
    assert _files(hub) == [f"{view.digest}.bundle"]
    listed = await client.get("/api/v1/models", headers=ADMIN)
    assert listed.json() == [created.json()]


async def test_the_signed_bundle_registered_again_is_the_same_version(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/api/v1/models", content=packed_bundle(), headers=RAW)
    signed = await client.get(f"/api/v1/artifacts/{created.json()['digest']}", headers=ADMIN)

    again = await client.post("/api/v1/models", content=signed.content, headers=RAW)

    assert again.status_code == 200
    assert again.json() == created.json()


async def test_the_same_model_made_again_answers_its_version_and_other_content_does_not(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    measured = Footprint(
        model_bytes=10, peak_ram_bytes=4_000, latency_ms_p50=0.01, latency_ms_p99=0.02
    )
    made = packed_bundle(version=3, footprint=measured)
    first = await client.post("/api/v1/models", content=made, headers=RAW)
    # Made again later, measured again, numbered otherwise: other bytes, the same model.
    slower = measured.model_copy(update={"latency_ms_p99": 0.03})
    remade = packed_bundle(version=9, footprint=slower)
    other_metrics = Bundle.create(
        name="motor",
        labels=["normal", "worn"],
        input=SPEC,
        model=b"onnx-model",
        metrics={"accuracy": 0.5},
    ).pack()

    again = await client.post("/api/v1/models", content=remade, headers=RAW)
    other = await client.post("/api/v1/models", content=other_metrics, headers=RAW)
    renamed = await client.post("/api/v1/models", content=packed_bundle("pump"), headers=RAW)

    assert digest(remade) != digest(made)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert (other.status_code, other.json()["version"]) == (201, 2)
    assert (renamed.status_code, renamed.json()["name"]) == (201, "pump")
    assert count(hub, ModelRow) == 3


async def test_a_model_measured_only_when_made_again_is_a_new_version(
    client: httpx.AsyncClient,
) -> None:
    measured = Footprint(
        model_bytes=10, peak_ram_bytes=4_000, latency_ms_p50=0.01, latency_ms_p99=0.02
    )
    first = await client.post("/api/v1/models", content=packed_bundle(), headers=RAW)

    again = await client.post(
        "/api/v1/models", content=packed_bundle(footprint=measured), headers=RAW
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["manifest"]["footprint"] is not None


def test_a_model_made_again_near_its_signature_expiry_is_signed_afresh(tmp_path: Path) -> None:
    database = Database(sqlite_url(tmp_path / "hub.db"))
    bundles, keys = BundleStore(tmp_path / "artifacts"), HubKeys(tmp_path / "keys")
    ttl = timedelta(days=365)
    with database.writer() as session:
        expired, _ = registry.register(
            session, bundles, keys, packed_bundle(), ttl=timedelta(seconds=-1)
        )
        session.commit()
    with database.writer() as session:
        again, created = registry.register(session, bundles, keys, packed_bundle(), ttl=ttl)
        same_bytes, created_again = registry.register(
            session, bundles, keys, packed_bundle(), ttl=ttl
        )
        session.commit()
    database.close()

    assert created and again.version == expired.version + 1
    TrustedKeys(keys.public()).verify(again.manifest)
    assert not created_again and same_bytes.version == again.version


async def test_a_digest_mismatch_is_400_and_stores_nothing(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    data = packed_bundle()

    response = await client.post(
        "/api/v1/models", content=data, params={"digest": "0" * 64}, headers=RAW
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

    response = await client.post("/api/v1/models", content=tampered, headers=RAW)

    assert response.status_code == 400
    assert "model.onnx does not match manifest.model_sha256" in response.json()["detail"]
    assert count(hub, ModelRow) == 0
    assert _files(hub) == []


async def test_bytes_that_are_no_bundle_are_400(client: httpx.AsyncClient, hub: HubContext) -> None:
    response = await client.post("/api/v1/models", content=b"not a tar at all", headers=RAW)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("bundle is not a tar archive")
    assert _files(hub) == []


async def test_other_bytes_under_a_name_become_its_next_version(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    first = await client.post("/api/v1/models", content=packed_bundle(model=b"first"), headers=RAW)

    second = await client.post(
        "/api/v1/models", content=packed_bundle(model=b"second"), headers=RAW
    )

    assert second.status_code == 201
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert count(hub, ModelRow) == 2
    assert _files(hub) == sorted(f"{r.json()['digest']}.bundle" for r in (first, second))


def test_concurrent_registrations_of_a_name_all_succeed_with_different_versions(
    tmp_path: Path,
) -> None:
    db = Database(sqlite_url(tmp_path / "hub.db"))
    bundles, keys = BundleStore(tmp_path / "artifacts"), HubKeys(tmp_path / "keys")
    start = threading.Barrier(4)

    def register(n: int) -> int:
        start.wait()
        with db.writer() as session:
            data = packed_bundle(model=f"trainer {n}".encode())
            view, _ = registry.register(session, bundles, keys, data, ttl=timedelta(days=1))
            session.commit()
            return view.version

    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(register, range(4)))
    db.close()

    assert sorted(versions) == [1, 2, 3, 4]


async def test_models_are_listed_by_name_and_version(client: httpx.AsyncClient) -> None:
    for name, model in (("motor", b"a"), ("pump", b"b"), ("motor", b"c")):
        await client.post("/api/v1/models", content=packed_bundle(name, model=model), headers=RAW)

    listed = await client.get("/api/v1/models", headers=ADMIN)

    assert [(m["name"], m["version"]) for m in listed.json()] == [
        ("motor", 1),
        ("motor", 2),
        ("pump", 1),
    ]


async def test_a_signature_lasts_as_long_as_the_hub_is_set_to(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    hub.settings.signature_days = 2
    before = datetime.now(UTC)

    created = await client.post("/api/v1/models", content=packed_bundle(), headers=RAW)

    expires = ModelView.model_validate_json(created.content).manifest.expires_at
    assert expires is not None
    assert before + timedelta(days=2) <= expires <= datetime.now(UTC) + timedelta(days=2)
