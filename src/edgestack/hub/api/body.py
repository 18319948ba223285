"""Request bodies read by hand: gzip allowed, size capped, errors in the API's own words.

Agents compress their batches, which FastAPI's body parsing does not undo; reading the
raw body here also lets a cap apply before a large upload is held in memory.
"""

import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from edgestack.hub.api.nul import MESSAGE, nul_at

__all__ = ["MAX_JSON_BYTES", "document_bodies", "json_body", "read_body"]

M = TypeVar("M", bound=BaseModel)

MAX_JSON_BYTES = 64 * 1024 * 1024
# Bodies up to this size (decompressed) are unpacked and parsed on the event loop: that takes
# microseconds, less than the hop to a worker thread and back, which a fleet pays per batch.
_INLINE_BYTES = 64 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed when it says `Content-Encoding: gzip`; 413 past `limit` bytes."""
    raw = await _read_raw(request, limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise HTTPException(
            415, f"Content-Encoding '{encoding}' is not supported; send gzip or no encoding"
        )
    if len(raw) <= _INLINE_BYTES:
        try:
            return _gunzip(raw, min(limit, _INLINE_BYTES))
        except _TooLarge:
            if limit <= _INLINE_BYTES:
                raise
    return await run_in_threadpool(_gunzip, raw, limit)


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency giving the body parsed as `model`; 422 naming the field when it is not."""

    async def parse(request: Request) -> M:
        data = await read_body(request, MAX_JSON_BYTES)
        if len(data) <= _INLINE_BYTES:
            return _validate(model, data)
        return await run_in_threadpool(_validate, model, data)

    parse.__name__ = f"{model.__name__}_body"
    parse.body_model = model  # type: ignore[attr-defined]  # read by `document_bodies`
    return parse


def document_bodies(app: FastAPI, prefix: str, routers: Iterable[APIRouter]) -> None:
    """Put the bodies that `json_body` reads on the routes of `routers` (included under
    `prefix`) into the app's OpenAPI document, which FastAPI cannot see, so the docs and the
    clients generated from them know what to send."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = plain()
        bodies = {
            (prefix + route.path, method.lower()): model
            for router in routers
            for route in router.routes
            if isinstance(route, APIRoute)
            for dependency in route.dependant.dependencies
            if (model := getattr(dependency.call, "body_model", None)) is not None
            for method in route.methods or ()
        }
        refs, schemas = models_json_schema(
            [(model, "validation") for model in set(bodies.values())],
            ref_template="#/components/schemas/{model}",
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in schemas.get("$defs", {}).items():
            components.setdefault(name, schema)
        for (path, method), model in bodies.items():
            document["paths"][path][method]["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(model, "validation")]}},
            }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


class _TooLarge(HTTPException):
    """413: the body, or what it unpacks to, is past the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"the body is larger than {limit} bytes; send it in smaller batches or parts"
        )


async def _read_raw(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(data: bytes, limit: int) -> bytes:
    out = bytearray()
    while data:  # gzip allows several members one after the other
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += member.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise HTTPException(
                400, f"the body says Content-Encoding: gzip but is not gzip data ({exc})"
            ) from exc
        if len(out) > limit:
            raise _TooLarge(limit)
        if not member.eof:
            raise HTTPException(400, "the gzip body is truncated; send the whole batch again")
        data = member.unused_data
    return bytes(out)


def _validate(model: type[M], data: bytes) -> M:
    try:
        parsed = model.model_validate_json(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from exc
    # JSON writes a NUL only as this escape: the walk runs on the rare body that holds one.
    if b"\\u0000" in data:
        where = nul_at(parsed.model_dump(mode="json", by_alias=True))
        if where is not None:
            raise RequestValidationError([{"loc": ("body", *where), "msg": MESSAGE}])
    return parsed
