"""How simulated devices reach a hub: a seam with one implementation per transport.

A transport carries the calls of many devices at once; each call names its device's token,
so one connection pool serves a whole process of devices, as one HTTP client per device
would not (ten thousand pools, ten thousand idle sockets).
"""

from typing import Protocol

import aiohttp

# A simulated device meets the hub's answers as an agent does.
from edgestack.agent.link import HubRejected, HubUnavailable, retryable
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

__all__ = ["HttpTransport", "Transport"]

_CALL_TIMEOUT = aiohttp.ClientTimeout(total=30)


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
    long-polls get a socket each, so a slow poll never queues telemetry.

    aiohttp rather than httpx, which the agent uses: httpx's pool looks at every connection
    it holds for each request, and with thousands of long-polls in one process the
    simulator, not the hub, would be what is measured.
    """

    def __init__(self, hub_url: str, connections: int = 64) -> None:
        self._base = hub_url.rstrip("/")
        self._headers = {PROTOCOL_HEADER: str(PROTOCOL)}
        self._calls: aiohttp.ClientSession | None = None
        self._polls: aiohttp.ClientSession | None = None
        self._connections = connections

    def _sessions(self) -> tuple[aiohttp.ClientSession, aiohttp.ClientSession]:
        # Made on first use: aiohttp binds a session to the running event loop.
        if self._calls is None or self._polls is None:
            self._calls = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                headers=self._headers,
            )
            self._polls = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), headers=self._headers
            )
        return self._calls, self._polls

    async def aclose(self) -> None:
        for session in (self._calls, self._polls):
            if session is not None:
                await session.close()

    async def enrol(self, request: EnrolRequest) -> EnrolResponse:
        body = request.model_dump_json(exclude_none=True)
        answer = await self._call("POST", "/api/v1/enrol", "", data=body)
        return EnrolResponse.model_validate_json(answer)

    async def desired(
        self, device_id: str, token: str, *, after: int | None, wait_s: float
    ) -> DesiredState:
        query = f"wait={wait_s}" if after is None else f"after={after}&wait={wait_s}"
        answer = await self._call(
            "GET",
            f"/api/v1/devices/{device_id}/desired?{query}",
            token,
            poll_s=wait_s + 30,
        )
        return DesiredState.model_validate_json(answer)

    async def report(self, device_id: str, token: str, state: ReportedState) -> None:
        await self._call(
            "PUT", f"/api/v1/devices/{device_id}/reported", token, data=state.model_dump_json()
        )

    async def ingest(self, device_id: str, token: str, kind: str, gzipped: bytes) -> IngestAck:
        answer = await self._call(
            "POST", f"/api/v1/devices/{device_id}/{kind}", token, data=gzipped, gzipped=True
        )
        return IngestAck.model_validate_json(answer)

    async def download(self, token: str, digest: str) -> int:
        return len(await self._call("GET", f"/api/v1/artifacts/{digest}", token))

    async def _call(
        self,
        method: str,
        path: str,
        token: str,
        *,
        data: str | bytes | None = None,
        gzipped: bool = False,
        poll_s: float | None = None,
    ) -> bytes:
        """The body of the hub's answer; `poll_s`: a long-poll, on a socket of its own."""
        calls, polls = self._sessions()
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        session = calls if poll_s is None else polls
        timeout = _CALL_TIMEOUT if poll_s is None else aiohttp.ClientTimeout(total=poll_s)
        try:
            async with session.request(
                method, self._base + path, data=data, headers=headers, timeout=timeout
            ) as response:
                body = await response.read()
                status = response.status
                retry = response.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HubUnavailable(f"{method} {path}: {exc!r}") from exc
        if retryable(status):
            raise HubUnavailable(
                f"{method} {path}: hub answered {status}",
                float(retry) if retry.isdigit() else None,
            )
        if status >= 400:
            raise HubRejected(status, problem_detail(body))
        return body
