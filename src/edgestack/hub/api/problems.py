"""Every refusal as `{"detail": "<one line naming the problem and the fix>"}`."""

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from edgestack.hub.errors import HubProblem
from edgestack.protocol import Problem

__all__ = ["describe_errors", "install_problem_handlers"]

MAX_LISTED = 10


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """`body.samples[2].at: Input should be a valid datetime; ...` from validation errors."""
    lines = list(dict.fromkeys(f"{_where(e['loc'])}: {e['msg']}" for e in errors))
    more = len(lines) - MAX_LISTED
    return "; ".join(lines[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(HubProblem, _problem)
    app.add_exception_handler(ClientDisconnect, _left)
    app.add_exception_handler(Exception, _unexpected)


def _where(loc: Sequence[str | int]) -> str:
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        elif where:
            where += f".{part}"
        else:
            where = str(part)
    return where or "body"


def _answer(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(Problem(detail=detail).model_dump(), status, headers=headers)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _answer(422, describe_errors(exc.errors()))


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = str(exc.detail)
    # Starlette's own refusals carry only the status phrase; say what was asked for.
    if exc.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"no route {request.method} {request.url.path}; the routes are listed at /docs"
    elif exc.status_code == 405 and detail == HTTPStatus.METHOD_NOT_ALLOWED.phrase:
        detail = f"{request.method} is not allowed on {request.url.path}; see /docs"
    return _answer(exc.status_code, detail, exc.headers)


async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HubProblem)
    return _answer(exc.status, exc.detail, exc.headers)


async def _left(request: Request, exc: Exception) -> JSONResponse:
    # Nobody reads this answer. Left to the catch-all, a client giving up on a busy hub
    # cost a logged traceback each, and the hub got busier the more clients gave up.
    return _answer(400, "the client left before its request's body arrived")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return _answer(
        500, f"internal error ({type(exc).__name__}); the hub's log has the details, try again"
    )
