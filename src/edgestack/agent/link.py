"""The agent's side of the wire: typed calls to the hub, counting every byte sent."""

import contextlib
import email.utils
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx

from edgestack.protocol import (
    PROTOCOL,
    PROTOCOL_HEADER,
    DesiredState,
    EnrolRequest,
    EnrolResponse,
    IngestAck,
    ReportedState,
    problem_detail,
)

__all__ = [
    "Artifact",
    "HubLink",
    "HubRejected",
    "HubUnavailable",
    "Link",
    "ProtocolRefused",
    "retryable",
]


# Answers that say "not now" rather than "never": the same call is tried again later.
_RETRY_STATUSES = frozenset({408, 425, 429})


def retryable(status: int) -> bool:
    """Whether an answer with `status` says "not now" rather than "never"."""
    return status >= 500 or status in _RETRY_STATUSES


class HubUnavailable(Exception):
    """The hub could not be reached, failed or asked to wait; the same call may succeed later.
    `retry_after_s` is how long the hub asked us to wait, when it said."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class HubRejected(Exception):
    """The hub refused the request; sending it again will not help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"hub answered {status}: {detail}")
        self.status = status
        self.detail = detail


class ProtocolRefused(HubRejected):
    """The hub does not speak this agent's protocol; no call will succeed until one of them
    is upgraded."""


@dataclass(frozen=True)
class Artifact:
    """A bundle arriving: its bytes from `start` on, in chunks."""

    start: int
    chunks: AsyncIterator[bytes]


class Link(Protocol):
    """What the agent calls the hub through, whichever the transport: `HubLink` over HTTP,
    `MqttLink` through a broker. `token` is the device token its calls prove who it is
    with."""

    token: str

    async def aclose(self) -> None: ...

    def take_sent_bytes(self) -> int: ...

    async def enrol(self, request: EnrolRequest) -> EnrolResponse: ...

    async def desired(self, device_id: str, *, after: int, wait_s: float) -> DesiredState: ...

    async def report(self, device_id: str, state: ReportedState) -> None: ...

    async def ingest(self, device_id: str, kind: str, gzipped_json: bytes) -> IngestAck | None:
        """Send an outbox batch, gzipped JSON of `kind`; returns once it is safe to drop it."""
        ...

    async def infer(self, body: bytes) -> bytes: ...

    def artifact(
        self, digest: str, *, offset: int = 0
    ) -> AbstractAsyncContextManager[Artifact]: ...


class HubLink:
    """Every call states this release's protocol in the `PROTOCOL_HEADER` header."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout_s,
            headers={PROTOCOL_HEADER: str(PROTOCOL)},
            event_hooks={"request": [self._count]},
        )
        self._sent = 0
        self.token = ""

    async def aclose(self) -> None:
        await self._client.aclose()

    def take_sent_bytes(self) -> int:
        """Bytes sent since the last call: request lines, headers and bodies."""
        sent, self._sent = self._sent, 0
        return sent

    async def enrol(self, request: EnrolRequest) -> EnrolResponse:
        # Without a token to show, send no field for it: a hub of protocol 1 refuses fields.
        body = request.model_dump_json(exclude_none=True)
        response = await self._call("POST", "/api/v1/enrol", content=body)
        return EnrolResponse.model_validate_json(response.content)

    async def desired(self, device_id: str, *, after: int, wait_s: float) -> DesiredState:
        response = await self._call(
            "GET",
            f"/api/v1/devices/{device_id}/desired",
            params={"after": after, "wait": wait_s},
            timeout=wait_s + 10,
        )
        return DesiredState.model_validate_json(response.content)

    async def report(self, device_id: str, state: ReportedState) -> None:
        await self._call(
            "PUT", f"/api/v1/devices/{device_id}/reported", content=state.model_dump_json()
        )

    async def ingest(self, device_id: str, kind: str, gzipped_json: bytes) -> IngestAck:
        response = await self._call(
            "POST",
            f"/api/v1/devices/{device_id}/{kind}",
            content=gzipped_json,
            headers={"Content-Encoding": "gzip"},
        )
        return IngestAck.model_validate_json(response.content)

    async def infer(self, body: bytes) -> bytes:
        """The hub's answer, as the cloud tier, to the `InferenceRequest` JSON `body`."""
        response = await self._call("POST", "/api/v1/infer", content=body)
        return response.content

    @contextlib.asynccontextmanager
    async def artifact(self, digest: str, *, offset: int = 0) -> AsyncIterator[Artifact]:
        """Stream bundle `digest` from byte `offset` on, resuming an interrupted download.
        The hub may answer with the whole file instead; `Artifact.start` says which."""
        response = await self._call(
            "GET",
            f"/api/v1/artifacts/{digest}",
            headers={"Range": f"bytes={offset}-"} if offset else None,
            timeout=120,
            stream=True,
        )
        try:
            start = offset if response.status_code == 206 else 0
            yield Artifact(start, _chunks(response, f"GET /api/v1/artifacts/{digest}"))
        finally:
            await response.aclose()

    async def _call(
        self,
        method: str,
        url: str,
        *,
        content: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, float] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if content is not None:
            all_headers.setdefault("Content-Type", "application/json")
        request = self._client.build_request(
            method,
            url,
            content=content,
            headers=all_headers,
            params=params,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        try:
            response = await self._client.send(request, stream=stream)
            if stream and response.status_code >= 400:
                await response.aread()
        except httpx.TransportError as exc:
            raise HubUnavailable(f"{method} {url}: {exc!r}") from exc
        if retryable(response.status_code):
            raise HubUnavailable(
                f"{method} {url}: hub answered {response.status_code}",
                _retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            # Only a refused protocol names the ones the hub speaks.
            refused = ProtocolRefused if PROTOCOL_HEADER in response.headers else HubRejected
            raise refused(response.status_code, problem_detail(response.content))
        return response

    async def _count(self, request: httpx.Request) -> None:
        head = len(request.method) + len(request.url.raw_path) + 12
        head += sum(len(k) + len(v) + 4 for k, v in request.headers.raw)
        self._sent += head + 2 + len(request.content)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def _chunks(response: httpx.Response, what: str) -> AsyncIterator[bytes]:
    try:
        # As they arrive: a buffer would lose what came before a broken connection.
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx.TransportError as exc:
        raise HubUnavailable(f"{what}: {exc!r}") from exc
