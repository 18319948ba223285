import httpx
import pytest

from edgestack.bundle import digest
from edgestack.hub.context import HubContext

from .factories import ADMIN, Device, packed_bundle

pytestmark = pytest.mark.anyio


@pytest.fixture
async def bundle(client: httpx.AsyncClient, hub: HubContext) -> bytes:
    """The signed bundle the hub stored for one it was given."""
    data = packed_bundle(model=bytes(range(256)) * 40)
    response = await client.post(
        "/api/v1/models",
        content=data,
        headers={**ADMIN, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201
    return hub.bundles.path(response.json()["digest"]).read_bytes()


async def test_a_device_downloads_a_bundle_by_digest(
    client: httpx.AsyncClient, device: Device, bundle: bytes
) -> None:
    response = await client.get(f"/api/v1/artifacts/{digest(bundle)}", headers=device.auth)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == bundle


async def test_a_range_request_returns_206_and_those_bytes(
    client: httpx.AsyncClient, device: Device, bundle: bytes
) -> None:
    response = await client.get(
        f"/api/v1/artifacts/{digest(bundle)}", headers={**device.auth, "Range": "bytes=1000-2999"}
    )

    assert response.status_code == 206
    assert response.content == bundle[1000:3000]
    assert response.headers["content-range"] == f"bytes 1000-2999/{len(bundle)}"


async def test_the_admin_may_download_too(client: httpx.AsyncClient, bundle: bytes) -> None:
    response = await client.get(f"/api/v1/artifacts/{digest(bundle)}", headers=ADMIN)

    assert response.content == bundle


async def test_an_unknown_digest_is_404(client: httpx.AsyncClient, device: Device) -> None:
    response = await client.get(f"/api/v1/artifacts/{'a' * 64}", headers=device.auth)

    assert response.status_code == 404
    assert response.json()["detail"].startswith(f"no bundle with digest {'a' * 64} is stored")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer stolen"}])
async def test_artifacts_need_a_token_of_the_fleet(
    client: httpx.AsyncClient, bundle: bytes, headers: dict[str, str]
) -> None:
    response = await client.get(f"/api/v1/artifacts/{digest(bundle)}", headers=headers)

    assert response.status_code == 401
    assert "token" in response.json()["detail"]


async def test_a_bundle_corrupt_on_disk_is_refused_with_503_and_one_store_corrupt_event(
    client: httpx.AsyncClient, hub: HubContext, device: Device, bundle: bytes
) -> None:
    url = f"/api/v1/artifacts/{digest(bundle)}"
    served = await client.get(url, headers=device.auth)
    path = hub.bundles.path(digest(bundle))
    path.write_bytes(bundle[:-1] + bytes([bundle[-1] ^ 1]))

    first = await client.get(url, headers=device.auth)
    second = await client.get(url, headers=device.auth)

    assert served.status_code == 200
    for refused in (first, second):
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "60"
        assert refused.json()["detail"].startswith(f"bundle {digest(bundle)} is corrupt")
    listed = (await client.get("/api/v1/events", headers=ADMIN)).json()
    assert [(e["device_id"], e["event"]["kind"]) for e in listed] == [
        ("motor-1", "device_enrolled"),
        (None, "store_corrupt"),
    ]


async def test_a_bundle_restored_on_disk_is_served_again(
    client: httpx.AsyncClient, hub: HubContext, device: Device, bundle: bytes
) -> None:
    url = f"/api/v1/artifacts/{digest(bundle)}"
    path = hub.bundles.path(digest(bundle))
    path.write_bytes(b"garbage")
    refused = await client.get(url, headers=device.auth)

    path.write_bytes(bundle)
    served = await client.get(url, headers=device.auth)

    assert refused.status_code == 503
    assert served.status_code == 200
    assert served.content == bundle
