"""How simulated devices reach a hub: a seam with one implementation per transport.

A transport carries the calls of many devices at once; each call names its device's token,
so one connection pool serves a whole process of devices, as one HTTP client per device
would not (ten thousand pools, ten thousand idle sockets).
"""

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

__all__ = ["TRANSPORTS", "HttpTransport", "Refused", "Transport", "Unavailable"]

# Answers that say "not now": the same call may succeed later.
_RETRY_STATUSES = frozenset({408, 425, 429})


class Unavailable(Exception):
    """The hub could not be reached, failed or asked to wait; `retry_after_s` when it said."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Refused(Exception):
    """The hub refused the call; sending it again will not help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"hub answered {status}: {detail}")
        self.status = status


class Transport(Protocol):
    """The calls a simulated device makes, each with its device's token."""

    async def enrol(self, request: EnrolRequest) -> EnrolResponse: ...

    async def desired(
        self, device_id: str, token: str, *, after: int | None, wait_s: float
    ) -> DesiredState: ...

    async def report(self, device_id: str, token: str, state: ReportedState) -> None: ...

    async def ingest(self, device_id: str, token: str, kind: str, gzipped: bytes) -> IngestAck:
        """Send a gzipped `TelemetryBatch` (kind `telemetry`) or `EventBatch` (`events`)."""
        ...

    async def download(self, token: str, digest: str) -> int:
        """Fetch bundle `digest`; the bytes it came in."""
        ...

    async def aclose(self) -> None: ...


class HttpTransport:
    """The hub's HTTP API, as agents speak it: short calls share `connections` sockets,
    long-polls get a socket each (up to `polls`), so a slow poll never queues telemetry."""

    def __init__(self, hub_url: str, *, connections: int = 64, polls: int = 10_000) -> None:
        headers = {PROTOCOL_HEADER: str(PROTOCOL)}
        self._calls = httpx.AsyncClient(
            base_url=hub_url,
            headers=headers,
            timeout=30,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self._polls = httpx.AsyncClient(
            base_url=hub_url,
            headers=headers,
            timeout=30,
            limits=httpx.Limits(max_connections=polls, max_keepalive_connections=polls),
        )

    async def aclose(self) -> None:
        await self._calls.aclose()
        await self._polls.aclose()

    async def enrol(self, request: EnrolRequest) -> EnrolResponse:
        body = request.model_dump_json(exclude_none=True)
        response = await self._call(self._calls, "POST", "/api/v1/enrol", "", content=body)
        return EnrolResponse.model_validate_json(response.content)

    async def desired(
        self, device_id: str, token: str, *, after: int | None, wait_s: float
    ) -> DesiredState:
        params = {"wait": wait_s} if after is None else {"after": after, "wait": wait_s}
        response = await self._call(
            self._polls,
            "GET",
            f"/api/v1/devices/{device_id}/desired",
            token,
            params=params,
            timeout=wait_s + 30,
        )
        return DesiredState.model_validate_json(response.content)

    async def report(self, device_id: str, token: str, state: ReportedState) -> None:
        await self._call(
            self._calls,
            "PUT",
            f"/api/v1/devices/{device_id}/reported",
            token,
            content=state.model_dump_json(),
        )

    async def ingest(self, device_id: str, token: str, kind: str, gzipped: bytes) -> IngestAck:
        response = await self._call(
            self._calls,
            "POST",
            f"/api/v1/devices/{device_id}/{kind}",
            token,
            content=gzipped,
            headers={"Content-Encoding": "gzip"},
        )
        return IngestAck.model_validate_json(response.content)

    async def download(self, token: str, digest: str) -> int:
        response = await self._call(self._calls, "GET", f"/api/v1/artifacts/{digest}", token)
        return len(response.content)

    async def _call(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        token: str,
        *,
        content: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, float] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = await client.request(
                method,
                url,
                content=content,
                headers=sent,
                params=params,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise Unavailable(f"{method} {url}: {exc!r}") from exc
        if response.status_code >= 500 or response.status_code in _RETRY_STATUSES:
            retry = response.headers.get("Retry-After", "")
            raise Unavailable(
                f"{method} {url}: hub answered {response.status_code}",
                float(retry) if retry.isdigit() else None,
            )
        if response.status_code >= 400:
            raise Refused(response.status_code, problem_detail(response.content))
        return response


TRANSPORTS: dict[str, type[HttpTransport]] = {"http": HttpTransport}
"""Transports by the scheme `--transport` names; MQTT joins once the broker's topic layout
is settled."""
