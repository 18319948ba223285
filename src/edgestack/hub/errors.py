"""Refusals raised below the API; each becomes `{"detail": message}` with its status."""

__all__ = ["BadRequest", "Conflict", "Forbidden", "HubProblem", "NotFound", "Unprocessable"]


class HubProblem(Exception):
    """A request the hub refuses; the message names what is wrong and the fix."""

    status = 400

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
