"""What every route may answer, stated once in the OpenAPI document for all of them: each
refusal it can give, as a `Problem`, and the headers of a page where it lists."""

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from edgestack.hub.api.paging import NEXT_PAGE_HEADERS, is_paged
from edgestack.protocol import Problem

__all__ = ["document_answers"]

_PROBLEM = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_ANY = "any operation"
_REFUSALS: dict[str, tuple[set[str], str]] = {
    # status: (the operations that may answer it, by what they have; what it means)
    "400": ({_ANY}, "a malformed request, or a protocol the hub does not speak (see the header)"),
    "401": ({"security"}, "no token, or one the hub does not know; the detail says which to send"),
    "403": ({"security"}, "the token may not do this; the detail names the role it needs"),
    "404": ({"path", "body"}, "something the call names does not exist; the detail says which"),
    "409": ({"write"}, "the state of what it names does not allow this now; the detail says why"),
    "413": ({"body"}, "the body is larger than the hub takes; send less at a time"),
    "415": ({"body"}, "the body's Content-Encoding is not supported; send gzip or none"),
    "422": ({_ANY}, "a parameter or the body is invalid; the detail names each field and why"),
}


def document_answers(app: FastAPI, prefix: str, routers: Iterable[APIRouter]) -> None:
    """Add to the app's OpenAPI document, for every operation, the refusals it may give, all
    with a `Problem` body (in place of FastAPI's own 422 body, which the hub never sends),
    and, on the listings of `routers` (included under `prefix`), the headers saying where
    the next page starts."""
    documented = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        document = documented()
        if not done:
            _state_answers(document, prefix, routers)
            done = True
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def _state_answers(document: dict[str, Any], prefix: str, routers: Iterable[APIRouter]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for operations in document["paths"].values():
        for method, operation in operations.items():
            _refusals(method, operation)
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and is_paged(route):
                for method in route.methods or ():
                    operation = document["paths"][prefix + route.path][method.lower()]
                    operation["responses"]["200"]["headers"] = NEXT_PAGE_HEADERS


def _refusals(method: str, operation: dict[str, Any]) -> None:
    kinds = {
        _ANY,
        *(["security"] if operation.get("security") else []),
        *(["path"] if any(p["in"] == "path" for p in operation.get("parameters", [])) else []),
        *(["write"] if method != "get" else []),
        *(["body"] if "requestBody" in operation else []),
    }
    responses = operation.setdefault("responses", {})
    if "HTTPValidationError" in str(responses.get("422")):
        del responses["422"]  # FastAPI's own, of a body the hub never sends
    for status, (given, meaning) in _REFUSALS.items():
        if given & kinds:
            responses.setdefault(status, {"description": meaning})
    for status, answer in responses.items():
        if int(status) >= 400:
            answer["content"] = _PROBLEM
