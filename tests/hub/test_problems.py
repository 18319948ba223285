from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from edgestack.hub.api.nul import MESSAGE
from edgestack.hub.api.problems import describe_errors

from .factories import ADMIN, Device

pytestmark = pytest.mark.anyio


def test_locations_read_like_paths() -> None:
    errors = [
        {"loc": ("body", "samples", 3, "features", 0), "msg": "Input should be a valid number"},
        {"loc": ("query", "wait"), "msg": "Input should be less than or equal to 60"},
        {"loc": ("query", "wait"), "msg": "Input should be less than or equal to 60"},
    ]

    described = describe_errors(errors)

    assert described == (
        "body.samples[3].features[0]: Input should be a valid number; "
        "query.wait: Input should be less than or equal to 60"
    )


def test_a_long_list_is_cut() -> None:
    errors = [{"loc": ("body", "x", i), "msg": "bad"} for i in range(25)]

    described = describe_errors(errors)

    assert described.endswith("body.x[9]: bad; and 15 more")


async def test_health_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.json() == {"status": "ok"}


async def test_an_unknown_route_answers_in_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing", headers=ADMIN)

    assert response.status_code == 404
    assert response.json() == {
        "detail": "no route GET /api/v1/nothing; the routes are listed at /docs"
    }


async def test_an_unsupported_encoding_is_415(client: httpx.AsyncClient) -> None:
    response = await client.patch(
        "/api/v1/devices/motor-1/desired",
        content=b"{}",
        headers={**ADMIN, "Content-Encoding": "br"},
    )

    assert response.status_code == 415
    assert response.json()["detail"] == (
        "Content-Encoding 'br' is not supported; send gzip or no encoding"
    )


async def test_operation_ids_are_tag_and_name(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    operations = [op for path in schema["paths"].values() for op in path.values()]

    assert all(op["operationId"].startswith(f"{op['tags'][0]}-") for op in operations)


def test_the_document_states_each_refusal_as_a_problem(app: FastAPI) -> None:
    document = app.openapi()
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]

    refusals = {
        (name, status): answer["content"]["application/json"]["schema"]["$ref"]
        for name, operation in operations
        for status, answer in operation["responses"].items()
        if int(status) >= 400
    }

    assert set(refusals.values()) == {"#/components/schemas/Problem"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for name, operation in operations:
        assert {"400", "422"} <= operation["responses"].keys(), name
        if operation.get("security"):
            assert {"401", "403"} <= operation["responses"].keys(), name
    assert ("PATCH /api/v1/devices/{device_id}/tags", "404") in refusals
    assert ("POST /api/v1/devices/{device_id}/approval", "409") in refusals
    assert ("GET /api/v1/devices", "409") not in refusals


@pytest.mark.parametrize(
    ("method", "path", "given", "where"),
    [
        ("GET", "/api/v1/audit", {"params": {"actor": "ops\x00"}}, "query.actor"),
        ("GET", "/api/v1/datasets/a%00b", {}, "path.name"),
        (
            "POST",
            "/api/v1/webhooks",
            {"json": {"url": "https://apps.example/hook", "description": "a\x00b"}},
            "body.description",
        ),
    ],
)
async def test_a_nul_character_anywhere_is_refused_naming_where_on_either_database(
    client: httpx.AsyncClient, method: str, path: str, given: dict[str, Any], where: str
) -> None:
    response = await client.request(method, path, headers=ADMIN, **given)
    webhooks = await client.get("/api/v1/webhooks", headers=ADMIN)

    assert response.status_code == 422, response.text
    assert response.json()["detail"] == f"{where}: {MESSAGE}"
    assert webhooks.json() == []


async def test_a_device_that_leaves_mid_body_gets_no_server_error(
    app: FastAPI, client: httpx.AsyncClient, device: Device
) -> None:
    path = f"/api/v1/devices/{device.device_id}/telemetry"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"hub"),
            (b"authorization", f"Bearer {device.token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"1000"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("hub", 80),
    }
    # The device's timeout ran out a few bytes in: the server then says it disconnected.
    received = iter([{"type": "http.request", "body": b'{"batch_id', "more_body": True}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(received, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # a server error raises here, and the server logs it

    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400
