"""One simulated device: enrols, follows its twin, reports, sends telemetry and events.

It speaks the protocol's models but runs no agent: no sensors, no model, no outbox on disk;
a batch the hub could not take is sent again, the same batch id, on the next tick. Its
batches are a few hundred bytes, so gzip and JSON run on the event loop: this process is
a load generator, not an agent, and a hop to a thread would cost more than the work.
"""

import asyncio
import contextlib
import gzip
import random
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from edgestack.agent.link import HubRejected, HubUnavailable
from edgestack.fleetsim._transport import Transport
from edgestack.protocol import (
    DesiredState,
    EnrolRequest,
    Event,
    EventBatch,
    Hardware,
    ReportedState,
    TelemetryBatch,
)

__all__ = ["SimDevice", "Tally"]

T = TypeVar("T")

_HARDWARE = Hardware(cores=1, ram_mb=256, arch="sim", providers=["CPUExecutionProvider"])
# Batches kept to send again while the hub does not take them, per device.
_KEEP_UNSENT = 16
_LABELS = ("normal", "worn")


@dataclass
class Tally:
    """What the devices of one process did; summed across processes for the summary."""

    devices_up: int = 0
    enrolled: int = 0
    reports_sent: int = 0
    reports_acked: int = 0
    reports_duplicate: int = 0
    reports_failed: int = 0
    events_sent: int = 0
    events_acked: int = 0
    bundles_downloaded: int = 0
    desired_changes: int = 0
    elapsed_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    ingest_ms: list[float] = field(default_factory=list)
    desired_seen_at: list[float] = field(default_factory=list)
    acked_batches: list[str] = field(default_factory=list)

    def error(self, exc: Exception) -> None:
        reason = type(exc).__name__ if not isinstance(exc, HubRejected) else f"refused {exc.status}"
        self.errors[reason] = self.errors.get(reason, 0) + 1


class SimDevice:
    """Device `device_id`, holding `token` from an earlier run when it has one."""

    def __init__(
        self,
        device_id: str,
        token: str,
        transport: Transport,
        tally: Tally,
        *,
        enrol_token: str,
        interval_s: float,
        poll_s: float,
        event_share: float,
        rng: random.Random,
        starting: asyncio.Semaphore,
    ) -> None:
        self.device_id = device_id
        self.token = token
        self._transport = transport
        self._tally = tally
        self._enrol_token = enrol_token
        self._interval_s = interval_s
        self._poll_s = poll_s
        self._event_share = event_share
        self._rng = rng
        self._starting = starting
        self._seq = 0
        self._unsent: list[bytes] = []
        self._bundle_digest: str | None = None

    async def enrol(self) -> None:
        """Enrol, or enrol again with the token held; retried while the hub asks to wait."""
        request = EnrolRequest(
            device_id=self.device_id,
            enrol_token=self._enrol_token,
            hardware=_HARDWARE,
            device_token=self.token or None,
        )
        while True:
            try:
                self.token = (await self._transport.enrol(request)).device_token
            except HubUnavailable as exc:
                await asyncio.sleep((exc.retry_after_s or 1.0) * (1 + self._rng.random()))
                continue
            self._tally.enrolled += 1
            return

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the twin and send telemetry until `stop` is set; a batch on its way then is
        answered first, so every batch acked is counted. A device the hub refuses for good
        counts the reason and stops."""
        try:
            async with self._starting:
                version = await _unless(stop, self._start())
        except HubRejected as exc:
            self._tally.error(exc)
            return
        if version is None:
            return
        self._tally.devices_up += 1
        poll = asyncio.create_task(self._poll(version))
        try:
            await self._send(stop)
        finally:
            poll.cancel()
            await asyncio.gather(poll, return_exceptions=True)

    async def _start(self) -> int:
        """Enrol when no token is held, then follow the desired state; the version followed."""
        while True:
            try:
                if not self.token:
                    await self.enrol()
                desired = await self._transport.desired(
                    self.device_id, self.token, after=None, wait_s=0
                )
                await self._follow(desired)
                return desired.version
            except HubUnavailable as exc:
                self._tally.error(exc)
                await asyncio.sleep(exc.retry_after_s or self._rng.uniform(0.5, 1.5))
            except HubRejected as exc:
                if exc.status != 401 or not self.token:
                    raise
                # The token of an earlier run is no longer known (a fresh hub): enrol afresh.
                self.token = ""

    async def _poll(self, version: int) -> None:
        while True:
            try:
                desired = await self._transport.desired(
                    self.device_id, self.token, after=version, wait_s=self._poll_s
                )
                if desired.version != version:
                    await self._follow(desired)
                    self._tally.desired_changes += 1
                    self._tally.desired_seen_at.append(time.time())
                    version = desired.version
            except (HubUnavailable, HubRejected) as exc:
                self._tally.error(exc)
                await asyncio.sleep(self._interval_s)

    async def _follow(self, desired: DesiredState) -> None:
        """Fetch the bundle desired asks for, then report the version followed."""
        wanted = desired.bundle
        if wanted is not None and wanted.digest != self._bundle_digest:
            await self._transport.download(self.token, wanted.digest)
            self._tally.bundles_downloaded += 1
            self._bundle_digest = wanted.digest
        state = ReportedState(
            desired_version=desired.version,
            bundle=wanted,
            status="running" if wanted else "idle",
            hardware=_HARDWARE,
        )
        await self._transport.report(self.device_id, self.token, state)

    async def _send(self, stop: asyncio.Event) -> None:
        # Spread the first batches over an interval, as devices started at random times are.
        pause = self._rng.uniform(0, self._interval_s)
        while not await _stopped(stop, pause):
            started = time.monotonic()
            self._unsent = [*self._unsent, self._batch()][-_KEEP_UNSENT:]
            while self._unsent and await self._deliver(self._unsent[0]):
                self._unsent.pop(0)
            if self._rng.random() < self._event_share:
                await self._event()
            jitter = self._rng.uniform(-0.1, 0.1) * self._interval_s
            pause = max(0.0, self._interval_s + jitter - (time.monotonic() - started))

    async def _deliver(self, body: bytes) -> bool:
        self._tally.reports_sent += 1
        sent = time.monotonic()
        try:
            ack = await self._transport.ingest(self.device_id, self.token, "telemetry", body)
        except (HubUnavailable, HubRejected) as exc:
            self._tally.reports_failed += 1
            self._tally.error(exc)
            return False
        self._tally.ingest_ms.append((time.monotonic() - sent) * 1000)
        self._tally.reports_acked += ack.accepted
        self._tally.reports_duplicate += int(ack.duplicate)
        self._tally.acked_batches.append(str(ack.batch_id))
        return True

    def _batch(self) -> bytes:
        self._seq += 1
        end = datetime.now(UTC)
        windows = 10
        worn = self._rng.randint(0, 2)
        batch = TelemetryBatch(
            batch_id=uuid.uuid4(),
            seq=self._seq,
            start=end - timedelta(seconds=self._interval_s),
            end=end,
            windows=windows,
            predictions={_LABELS[0]: windows - worn, _LABELS[1]: worn},
            mean_confidence=self._rng.uniform(0.7, 1.0),
            latency_ms_p50=self._rng.uniform(0.5, 1.5),
            latency_ms_p95=self._rng.uniform(1.5, 4.0),
            raw_bytes=40_000,
            uplink_bytes=600,
            bundle_digest=self._bundle_digest,
        )
        return gzip.compress(batch.model_dump_json().encode(), compresslevel=1)

    async def _event(self) -> None:
        event = Event(
            event_id=uuid.uuid4(),
            at=datetime.now(UTC),
            kind="alarm_raised",
            severity="warning",
            label=_LABELS[1],
            confidence=0.9,
            message=f"{self.device_id}: simulated wear",
        )
        body = EventBatch(batch_id=uuid.uuid4(), events=[event]).model_dump_json().encode()
        self._tally.events_sent += 1
        try:
            await self._transport.ingest(
                self.device_id, self.token, "events", gzip.compress(body, compresslevel=1)
            )
        except (HubUnavailable, HubRejected) as exc:
            self._tally.error(exc)
            return
        self._tally.events_acked += 1


async def _stopped(stop: asyncio.Event, wait_s: float) -> bool:
    """Whether `stop` is set within `wait_s` seconds."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), wait_s)
    return stop.is_set()


async def _unless(stop: asyncio.Event, work: Coroutine[Any, Any, T]) -> T | None:
    """What `work` gives, or None when `stop` is set first (`work` is then cancelled)."""
    task = asyncio.create_task(work)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return None
    return task.result()
