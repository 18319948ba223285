"""An edge node's answers when its hub cannot help: each refusal names the field at fault, and
none is a 5xx of the node's own making."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from edgestack.agent.edge import MAX_REQUEST_BYTES, EdgeServer
from edgestack.agent.link import HubRejected, HubUnavailable
from edgestack.bundle import TrustedKeys
from edgestack.protocol import BundleRef
from edgestack.serving import Answering, ModelServer

pytestmark = pytest.mark.anyio

MODEL = BundleRef(name="big", version=1, digest="a" * 64)
BODY = {"model": MODEL.model_dump(), "rows": [[0.5, 1.5]]}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _fetch(ref: BundleRef) -> bytes:
    # What the node's hub link raises for each digest: away, or refusing it.
    if ref.digest.startswith("a"):
        raise HubUnavailable("GET /api/v1/artifacts: connection refused")
    raise HubRejected(404, f"no bundle with digest {ref.digest} is stored")


@pytest.fixture
async def edge() -> AsyncIterator[httpx.AsyncClient]:
    server = EdgeServer(Answering(ModelServer("edge", TrustedKeys([]))), _fetch, "127.0.0.1", 0)
    task = asyncio.create_task(server.run())
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(500):
            if server.port:
                try:
                    await client.get(f"http://127.0.0.1:{server.port}/healthz")
                    break
                except httpx.TransportError:
                    pass
            await asyncio.sleep(0.01)
        client.base_url = httpx.URL(f"http://127.0.0.1:{server.port}")
        yield client
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_bundle_the_hub_cannot_send_now_is_a_503_to_retry(
    edge: httpx.AsyncClient,
) -> None:
    response = await edge.post("/api/v1/infer", json=BODY)

    assert response.status_code == 503
    assert response.json()["detail"].startswith("model: the hub cannot send the bundle now")


async def test_a_bundle_the_hub_does_not_hold_is_a_404(edge: httpx.AsyncClient) -> None:
    unknown = {**BODY, "model": MODEL.model_copy(update={"digest": "b" * 64}).model_dump()}

    response = await edge.post("/api/v1/infer", json=unknown)

    assert response.status_code == 404
    assert "no bundle with digest" in response.json()["detail"]


async def test_bad_and_oversized_bodies_are_refused_naming_the_problem(
    edge: httpx.AsyncClient,
) -> None:
    garbled = await edge.post("/api/v1/infer", content=b"{not json")
    wide = await edge.post("/api/v1/infer", json={**BODY, "rows": [[1.0], [1.0, 2.0]]})
    huge = await edge.post("/api/v1/infer", content=b" " * (MAX_REQUEST_BYTES + 1))

    assert garbled.status_code == 422
    assert wide.status_code == 422
    assert wide.json()["detail"].startswith("rows: Value error, rows[1] has 2 values")
    assert huge.status_code == 413
