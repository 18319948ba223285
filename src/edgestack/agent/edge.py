"""An edge node: an agent started with `--serve` also answers the windows devices near it
offload (`POST /api/v1/infer`, as the hub answers them for the cloud tier), with bundles it
downloads from its hub the way it downloads its own, verified.

The edge node checks no token: it answers whoever reaches its bind address (127.0.0.1 by
default), as a model server on a site's network does; what it serves is only ever a bundle
the hub signed. Reading, validating and answering a request all run off the event loop.
"""

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edgestack.agent.link import HubRejected, HubUnavailable
from edgestack.protocol import InferenceRequest, Problem
from edgestack.serving import Answering, Fetch, refusal

__all__ = ["MAX_REQUEST_BYTES", "EdgeServer"]

log = logging.getLogger("edgestack.agent")

# A request of the most values the wire allows, written out as JSON, fits well within this.
MAX_REQUEST_BYTES = 32 * 1024 * 1024


class EdgeServer:
    """Serves `answering`'s models on `host`:`port` (0: any free port), fetching each bundle a
    request names for the first time with `fetch`."""

    def __init__(self, answering: Answering, fetch: Fetch, host: str, port: int) -> None:
        self.answering = answering
        self._fetch = fetch
        self.host = host
        self.port = port

    async def run(self) -> None:
        """Serve until cancelled; `OSError` when the address cannot be held."""
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off")
        server = _Server(config)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            self.port = sock.getsockname()[1]
            log.info("edge node answering offloaded windows on %s:%d", self.host, self.port)
            await server.serve(sockets=[sock])

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/infer", self._infer, methods=["POST"]),
                Route("/healthz", _healthy, methods=["GET"]),
            ]
        )

    async def _infer(self, request: Request) -> JSONResponse:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return _problem(
                    413, f"body: over {MAX_REQUEST_BYTES} bytes; send fewer rows a request"
                )
        try:
            asked = await asyncio.to_thread(InferenceRequest.model_validate_json, bytes(body))
        except ValidationError as exc:
            return _problem(422, _described(exc))
        try:
            answer = await self.answering.answer(asked, self._fetch)
        except HubUnavailable as exc:
            return _problem(503, f"model: the hub cannot send the bundle now ({exc}); retry")
        except HubRejected as exc:
            status = 404 if exc.status == 404 else 502
            return _problem(status, f"model: the hub refused this edge node the bundle: {exc}")
        except ValueError as exc:
            refused = refusal(exc)
            if refused is None:
                raise
            return _problem(*refused)
        return JSONResponse(answer.model_dump(mode="json"))


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The agent's own handlers stop it, this server with it.
        yield


async def _healthy(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(Problem(detail=detail).model_dump(), status)


def _described(exc: ValidationError) -> str:
    errors = exc.errors()
    where = ".".join(str(part) for part in errors[0]["loc"]) or "body"
    more = f"; and {len(errors) - 1} more" if len(errors) > 1 else ""
    return f"{where}: {errors[0]['msg']}{more}"
