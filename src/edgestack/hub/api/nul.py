"""A NUL character (0x00) in a request's text is refused: PostgreSQL stores none in text where
SQLite keeps it, so refusing it everywhere lets the hub answer alike on either database."""

from collections.abc import Mapping, Sequence

from fastapi.exceptions import RequestValidationError
from starlette.requests import HTTPConnection

__all__ = ["MESSAGE", "nul_at", "refuse_nul_in_url"]

MESSAGE = "holds a NUL character (0x00), which the hub keeps in no text; remove it"

Where = tuple[str | int, ...]


def nul_at(value: object, at: Where = ()) -> Where | None:
    """Where in `value` (JSON as Python reads it) the first text holding a NUL is, if any."""
    if isinstance(value, str):
        return at if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if (found := nul_at(key, (*at, key)) or nul_at(item, (*at, key))) is not None:
                return found
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        for index, item in enumerate(value):
            if (found := nul_at(item, (*at, index))) is not None:
                return found
    return None


async def refuse_nul_in_url(connection: HTTPConnection) -> None:
    """Refuse, as a 422 naming each, the path and query parameters that hold a NUL."""
    # Async although it awaits nothing: a plain function would run on a worker thread.
    if connection.scope["type"] != "http":
        # A WebSocket's parameters are ids, tags and kinds whose patterns admit no NUL.
        return
    given = [
        *(("path", name, value) for name, value in connection.path_params.items()),
        *(("query", name, value) for name, value in connection.query_params.multi_items()),
    ]
    errors = [
        {"loc": (place, name), "msg": MESSAGE, "type": "value_error"}
        for place, name, value in given
        if "\x00" in str(value)
    ]
    if errors:
        raise RequestValidationError(errors)
