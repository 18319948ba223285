"""Refusals raised below the API; each becomes `{"detail": message}` with its status."""

from typing import ClassVar

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "HubProblem",
    "NotFound",
    "StartRefused",
    "Unavailable",
    "Unprocessable",
]


class HubProblem(Exception):
    """A request the hub refuses; the message names what is wrong and the fix."""

    status = 400
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(HubProblem):
    status = 400


class Forbidden(HubProblem):
    status = 403


class NotFound(HubProblem):
    status = 404


class Conflict(HubProblem):
    status = 409


class Unprocessable(HubProblem):
    status = 422


class StartRefused(Exception):
    """The hub cannot start on its data directory; the message says why and what to do."""


class Unavailable(HubProblem):
    """The hub cannot serve this now; clients retry after `Retry-After` seconds."""

    status = 503
    headers: ClassVar[dict[str, str]] = {"Retry-After": "60"}
