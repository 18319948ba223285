"""Every listing pages: a page says where the next starts (`Link: <...>; rel="next"` and
`Edgestack-Next-Cursor`), the body stays the plain list, and walking the links gives every
row once, in order."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from edgestack.client import HubClient
from edgestack.protocol import NEXT_CURSOR_HEADER, SampleImport

from .factories import (
    ADMIN,
    ADMIN_TOKEN,
    ENROL_TOKEN,
    HARDWARE,
    Enrol,
    packed_bundle,
    sample_batch,
)

pytestmark = pytest.mark.anyio

# Lists the hub's code bounds, not its use: a handful of rows, ever.
BOUNDED = {"profiles-list", "keys-list", "alerts-rules"}
# Listings whose rows come inside an object.
WRAPPED = {"samples-list"}


async def _walk(client: httpx.AsyncClient, url: str) -> tuple[list[Any], list[str]]:
    """Every row the pages from `url` on hold, and each page's cursor."""
    rows: list[Any] = []
    cursors: list[str] = []
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url, headers=ADMIN)
        assert response.status_code == 200, response.text
        rows += response.json()
        next_url = response.links.get("next", {}).get("url")
        cursors.append(response.headers.get(NEXT_CURSOR_HEADER, ""))
    return rows, cursors


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1"])
async def test_devices_page_by_id_and_the_links_keep_the_filters(
    client: httpx.AsyncClient, enrol: Enrol, prefix: str
) -> None:
    for n in (1, 2, 3, 4, 5):
        await enrol(f"motor-{n}")
        tags = {"site": "plant-4" if n != 3 else "plant-5", "line": "2"}
        tagged = await client.patch(
            f"/api/v1/devices/motor-{n}/tags", json={"tags": tags}, headers=ADMIN
        )
        assert tagged.status_code == 200

    rows, cursors = await _walk(client, f"{prefix}/devices?tag=site=plant-4&tag=line=2&limit=2")

    assert [row["device_id"] for row in rows] == ["motor-1", "motor-2", "motor-4", "motor-5"]
    assert cursors == ["motor-2", ""]


@pytest.mark.parametrize(("order", "param"), [("oldest", "after_id"), ("newest", "before_id")])
async def test_events_page_by_id_either_way(
    client: httpx.AsyncClient, enrol: Enrol, order: str, param: str
) -> None:
    for n in range(5):
        await enrol(f"motor-{n}")  # each enrolment is an event
    everything = (await client.get(f"/api/v1/events?order={order}", headers=ADMIN)).json()

    first = await client.get(f"/api/v1/events?order={order}&limit=2", headers=ADMIN)
    rows, _ = await _walk(client, f"/api/v1/events?order={order}&limit=2")

    assert len(everything) == 5
    assert rows == everything
    assert first.headers[NEXT_CURSOR_HEADER] == str(everything[1]["id"])
    assert f"{param}={everything[1]['id']}" in first.links["next"]["url"]


async def test_a_page_with_no_next_says_nothing_of_one(
    client: httpx.AsyncClient, enrol: Enrol
) -> None:
    await enrol("motor-1")

    response = await client.get("/api/v1/devices?limit=1", headers=ADMIN)

    assert len(response.json()) == 1
    assert "link" not in response.headers
    assert NEXT_CURSOR_HEADER not in response.headers


async def test_model_versions_page_in_name_and_version_order(client: httpx.AsyncClient) -> None:
    raw = {**ADMIN, "Content-Type": "application/octet-stream"}
    for name, model in [("motor-x", b"x1"), ("motor", b"m1"), ("motor", b"m2")]:
        bundle = packed_bundle(name, model=model)
        registered = await client.post("/api/v1/models", content=bundle, headers=raw)
        assert registered.status_code == 201, registered.text

    rows, _ = await _walk(client, "/api/v1/models?limit=1")

    assert [(m["name"], m["version"]) for m in rows] == [("motor", 1), ("motor", 2), ("motor-x", 1)]


def test_every_listing_takes_a_cursor_and_documents_where_the_next_page_is(
    app: FastAPI,
) -> None:
    document = app.openapi()
    unpaged = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("200", {})
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            listing = method == "get" and (
                schema.get("type") == "array" or operation["operationId"] in WRAPPED
            )
            names = {p["name"] for p in operation.get("parameters", [])}
            paged = {"limit"} <= names and bool({"after", "after_id"} & names)
            documented = {"Link", NEXT_CURSOR_HEADER} <= answer.get("headers", {}).keys()
            if listing and operation["operationId"] not in BOUNDED and not paged & documented:
                unpaged.append(f"{method.upper()} {path}")

    assert not unpaged, (
        f"listings without paging: {unpaged}; give each route `pager: PagerDep` and a "
        "`WindowDep` (by id) or `KeysDep` (by name) from hub/api/paging.py, or, for a list "
        "the hub's code bounds, add its operation id to BOUNDED"
    )


class _Recording(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.cursors: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.cursors.append(request.url.params.get("after", ""))
        return self.inner.handle_request(request)


def test_the_sdk_walks_every_page(app_transport: httpx.BaseTransport) -> None:
    with httpx.Client(transport=app_transport, base_url="http://hub") as device:
        for n in range(5):
            hardware = HARDWARE.model_dump()
            body = {"device_id": f"motor-{n}", "enrol_token": ENROL_TOKEN, "hardware": hardware}
            assert device.post("/api/v1/enrol", json=body).status_code == 200
    recording = _Recording(app_transport)
    sdk = HubClient("http://hub", admin_token=ADMIN_TOKEN, transport=recording, page_size=2)

    listed = [view.device_id for view in sdk.devices()]

    assert listed == [f"motor-{n}" for n in range(5)]
    assert recording.cursors == ["", "motor-1", "motor-3"]


def test_the_sdk_gathers_every_page_of_samples(app_transport: httpx.BaseTransport) -> None:
    recording = _Recording(app_transport)
    sdk = HubClient("http://hub", admin_token=ADMIN_TOKEN, transport=recording, page_size=2)
    batch = sample_batch(2, 2, 2, 2, 2)
    imported = SampleImport(
        device_id="motor-1", batch_id=batch.batch_id, spec=batch.spec, samples=batch.samples
    )
    sdk.import_samples("default", imported)

    gathered = sdk.samples()

    assert [s.features[0] for s in gathered.samples] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert list(gathered.specs) == [batch.spec.fingerprint()]
    assert len(recording.cursors) == 1 + 3  # the import, then three pages
