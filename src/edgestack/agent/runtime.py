"""The edge runtime: senses in real time, follows its twin, and sends through the outbox.

Four tasks share one event loop. Sensing never awaits the network; the twin and
the uplink tasks retry with backoff while the hub is away, and the outbox keeps
what must be sent on disk until the hub has acknowledged it.
"""

import asyncio
import contextlib
import gzip
import logging
import os
import platform
import random
import signal
import uuid
from datetime import UTC, datetime
from typing import Literal, NoReturn, Protocol, runtime_checkable

import onnxruntime
from pydantic import BaseModel

from edgestack.agent.hotpath import HotPath, LoadedModel
from edgestack.agent.link import HubLink, HubRejected, HubUnavailable, ProtocolRefused
from edgestack.agent.rules import AlarmRule
from edgestack.agent.settings import AgentSettings
from edgestack.agent.store import LocalStore
from edgestack.appspec import AppSpecError, load_app_spec, motor_app
from edgestack.bundle import BundleError, BundleStore
from edgestack.protocol import (
    BundleRef,
    DataSample,
    DesiredState,
    EnrolRequest,
    Event,
    EventBatch,
    Hardware,
    ReportedState,
    SampleBatch,
)
from edgestack.sensing import Source

__all__ = ["Agent", "serve"]

log = logging.getLogger("edgestack.agent")

# Labelled windows leave in batches: at most this many, or this old, whichever comes first.
_SAMPLE_BATCH = 64
_SAMPLE_BATCH_AGE_S = 3.0
# An operator may take a while to approve a re-enrolment; asking this often costs nothing.
_APPROVAL_POLL_S = 15.0


@runtime_checkable
class _FaultInjectable(Protocol):
    def inject(self, kind: str, severity: float = 1.0) -> None: ...


class Agent:
    """One device: the app spec's sources and sinks, the twin, the outbox.

    Raises `AppSpecError` at construction when the app spec cannot run."""

    def __init__(self, settings: AgentSettings, source: Source | None = None) -> None:
        self.settings = settings
        app = load_app_spec(settings.app) if settings.app else motor_app(settings.seed)
        self.source = source or app.source()
        self.sinks = app.build_sinks()
        self.store = LocalStore(settings.data_dir / "agent.db")
        self.bundles = BundleStore(settings.data_dir / "bundles")
        self.link = HubLink(settings.hub_url)
        self.hot = HotPath(self.source, app.input_spec(self.source))
        self.hot.rule = AlarmRule(app.rules)
        self.applied = DesiredState()
        self.error: str | None = None
        self._enrolled = asyncio.Event()
        self._outbox_filled = asyncio.Event()
        self._report_due = True
        self._samples: list[DataSample] = []
        self._samples_since = 0.0
        self._enrol_lock = asyncio.Lock()

    @property
    def device_id(self) -> str:
        return self.settings.device_id

    async def run(self) -> None:
        """Run until cancelled; on the way out, cut a last telemetry batch and try to send it."""
        await self._restore()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._sense())
                tasks.create_task(self._follow_twin())
                tasks.create_task(self._send())
                tasks.create_task(self._report_telemetry())
        finally:
            self._flush_samples()
            self._cut_telemetry()
            if self._enrolled.is_set():
                try:
                    await asyncio.wait_for(self._drain(), self.settings.drain_timeout_s)
                except (TimeoutError, HubUnavailable, HubRejected):
                    log.warning(
                        "%d messages stay in the outbox for next time", self.store.pending()
                    )
            await self.link.aclose()
            self.store.close()
            self.source.close()
            for sink in self.sinks:
                sink.close()

    # -- start-up: last good state, offline --------------------------------

    async def _restore(self) -> None:
        token = self.store.get("device_token")
        if token:
            self.link.token = token
            self._enrolled.set()
        saved = self.store.get("desired")
        if saved:
            try:
                await self.apply(DesiredState.model_validate_json(saved))
            except HubUnavailable:
                log.warning("the saved bundle is missing locally; waiting for the hub")

    async def _enrol(self) -> None:
        """Enrol, proving with the token held, if any, that this is the enrolled device.

        Without a token the hub holds for this id, the enrolment waits for an operator's
        approval: retried with backoff, logged once. Any other refusal stops the agent."""
        request = EnrolRequest(
            device_id=self.device_id,
            enrol_token=self.settings.enrol_token.get_secret_value(),
            hardware=_hardware(),
            device_token=self.store.get("device_token"),
        )
        backoff = _Backoff()
        approval = _Backoff(max_s=_APPROVAL_POLL_S)
        waiting = False
        while True:
            try:
                response = await self.link.enrol(request)
                break
            except HubUnavailable as exc:
                backoff.note(exc)
                await backoff.sleep()
            except HubRejected as exc:
                if exc.status != 403 or isinstance(exc, ProtocolRefused):
                    raise
                if not waiting:
                    log.warning("waiting for approval: %s", exc.detail)
                    waiting = True
                await approval.sleep()
        self.store.set("device_token", response.device_token)
        self.link.token = response.device_token
        self._report_due = True
        self._enrolled.set()
        log.info("enrolled as %s", self.device_id)

    async def _recover(self, exc: HubRejected, token: str) -> None:
        """A hub that no longer knows this device gets a fresh enrolment; a hub that does not
        speak our protocol stops the agent; anything else waits. `token` is the one the
        refused call used: when the twin and the uplink are refused at once, only the first
        enrols again."""
        if isinstance(exc, ProtocolRefused):
            await self._stop_for(exc)
        if exc.status in (401, 404):
            async with self._enrol_lock:
                if self.link.token == token:
                    log.warning("hub refused our token (%s); enrolling again", exc.detail)
                    await self._enrol()
        else:
            log.error("%s", exc)
            await asyncio.sleep(1)

    async def _stop_for(self, exc: ProtocolRefused) -> NoReturn:
        """Report why in the twin if the hub takes it, then stop: no retry can succeed."""
        self.error = f"hub: {exc.detail}"
        with contextlib.suppress(HubUnavailable, HubRejected):
            await self.link.report(self.device_id, self._reported())
        raise exc

    # -- the twin ----------------------------------------------------------

    async def _follow_twin(self) -> None:
        if not self._enrolled.is_set():
            await self._enrol()
        backoff = _Backoff()
        while True:
            token = self.link.token
            try:
                if self._report_due:
                    await self.link.report(self.device_id, self._reported())
                    self._report_due = False
                desired = await self.link.desired(
                    self.device_id, after=self.applied.version, wait_s=self.settings.poll_wait_s
                )
                # A failed step is retried whenever the twin answers, not only on change.
                if desired != self.applied or self.error:
                    await self.apply(desired)
                backoff.reset()
            except HubUnavailable as exc:
                backoff.note(exc)
                await backoff.sleep()
            except HubRejected as exc:
                await self._recover(exc, token)

    async def apply(self, desired: DesiredState) -> None:
        """Move towards `desired`. A step that fails is reported, and the rest still applies;
        a bundle the hub cannot deliver now raises HubUnavailable and is tried again."""
        errors: list[str] = []
        before = self.applied
        if desired.bundle != before.bundle or (desired.bundle and self.hot.model is None):
            try:
                self._switch_model(await self._fetch(desired.bundle) if desired.bundle else None)
            except (BundleError, ValueError, HubRejected) as exc:
                errors.append(f"bundle: {exc}")
        if desired.fault != before.fault:
            errors.extend(self._inject(desired))
        if desired.collect != before.collect:
            self._flush_samples()
            self.hot.collect_label = desired.collect.label if desired.collect else None
            self.hot.restart_windows()
        if desired.rules != before.rules:
            self.hot.rule = AlarmRule(desired.rules)
        self.applied = desired
        self.store.set("desired", desired.model_dump_json())
        self.error = "; ".join(errors) or None
        if self.error:
            log.error("desired state v%d: %s", desired.version, self.error)
        self._report_due = True

    async def _fetch(self, ref: BundleRef) -> LoadedModel:
        if not self.bundles.has(ref.digest):
            data = await self.link.artifact(ref.digest)
            self.bundles.put(data, expected_digest=ref.digest)
        bundle = await asyncio.to_thread(self.bundles.load, ref.digest)
        return await asyncio.to_thread(LoadedModel.load, bundle, ref, self.source)

    def _switch_model(self, model: LoadedModel | None) -> None:
        self.hot.use_model(model)
        if model is not None:
            ref = model.ref
            log.info("running %s v%d (%s)", ref.name, ref.version, ref.digest[:12])
            self._enqueue_events(
                [
                    Event(
                        event_id=uuid.uuid4(),
                        at=datetime.now(UTC),
                        kind="model_loaded",
                        severity="info",
                        message=f"running {ref.name} v{ref.version}",
                        bundle_digest=ref.digest,
                    )
                ]
            )

    def _inject(self, desired: DesiredState) -> list[str]:
        fault = desired.fault
        if not isinstance(self.source, _FaultInjectable):
            return (
                ["fault: this device's source is real and cannot simulate faults"] if fault else []
            )
        try:
            if fault is None:
                self.source.inject("normal")
            else:
                self.source.inject(fault.kind, fault.severity)
        except ValueError as exc:
            return [f"fault: {exc}"]
        self.hot.restart_windows()
        return []

    def _status(self) -> Literal["idle", "collecting", "running", "error"]:
        if self.error:
            return "error"
        if self.hot.collect_label is not None:
            return "collecting"
        return "running" if self.hot.model else "idle"

    def _reported(self) -> ReportedState:
        return ReportedState(
            desired_version=self.applied.version,
            bundle=self.hot.model.ref if self.hot.model else None,
            status=self._status(),
            error=self.error,
            hardware=_hardware(),
        )

    # -- the hot path ------------------------------------------------------

    async def _sense(self) -> None:
        period = self.settings.chunk_s
        samples = max(1, round(self.source.rate_hz * period))
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            out = self.hot.step(samples)
            if out.events:
                self._enqueue_events(out.events)
            self._samples.extend(out.samples)
            if self._samples and (
                len(self._samples) >= _SAMPLE_BATCH
                or loop.time() - self._samples_since >= _SAMPLE_BATCH_AGE_S
            ):
                self._flush_samples()
            elif not self._samples:
                self._samples_since = loop.time()
            deadline = max(deadline + period, loop.time() - period)
            await asyncio.sleep(deadline - loop.time())

    def _flush_samples(self) -> None:
        if self._samples:
            # Flushed before a new collection applies: `applied` still names these samples'.
            dataset = self.applied.collect.dataset if self.applied.collect else "default"
            batch = SampleBatch(
                batch_id=uuid.uuid4(), spec=self.hot.spec, samples=self._samples, dataset=dataset
            )
            self._enqueue("samples", batch)
            self._samples = []

    def _enqueue_events(self, events: list[Event]) -> None:
        for event in events:
            if event.kind.startswith("alarm"):
                log.warning("%s: %s", event.kind, event.message)
            for sink in self.sinks:
                sink.emit(event)
        self._enqueue("events", EventBatch(batch_id=uuid.uuid4(), events=events))

    def _enqueue(self, kind: str, message: BaseModel) -> None:
        self.store.enqueue(kind, _gzip(message))
        self._outbox_filled.set()

    # -- telemetry and the uplink -------------------------------------------

    async def _report_telemetry(self) -> None:
        while True:
            await asyncio.sleep(self.applied.telemetry_interval_s)
            self._cut_telemetry()

    def _cut_telemetry(self) -> None:
        digest = self.hot.model.ref.digest if self.hot.model else None
        uplink = self.link.take_sent_bytes()
        self.store.enqueue_numbered(
            "telemetry", lambda seq: _gzip(self.hot.telemetry.cut(seq, uplink, digest))
        )
        self._outbox_filled.set()

    async def _send(self) -> None:
        await self._enrolled.wait()
        backoff = _Backoff()
        while True:
            token = self.link.token
            try:
                if not await self._drain():
                    self._outbox_filled.clear()
                    if self.store.peek() is None:
                        await self._outbox_filled.wait()
                backoff.reset()
            except HubUnavailable as exc:
                backoff.note(exc)
                await backoff.sleep()
            except HubRejected as exc:
                await self._recover(exc, token)

    async def _drain(self) -> bool:
        """Send the outbox oldest first until it is empty; False when nothing was pending.

        The hub drops a batch id it has seen, so a batch that arrived but whose
        answer was lost is sent again without being counted twice."""
        sent = False
        while (item := self.store.peek()) is not None:
            try:
                await self.link.ingest(self.device_id, item.kind, item.body)
            except HubRejected as exc:
                if exc.status in (401, 404) or isinstance(exc, ProtocolRefused):
                    raise
                # The hub will never take this message; keeping it would block the rest.
                log.error("dropped a %s batch the hub refused: %s", item.kind, exc.detail)
            self.store.ack(item)
            sent = True
        return sent


class _Backoff:
    """Exponential backoff with jitter, logging an outage once rather than every retry."""

    def __init__(self, first_s: float = 0.2, max_s: float = 5.0) -> None:
        self._first, self._max = first_s, max_s
        self._delay = first_s
        self._down = False

    def note(self, exc: Exception) -> None:
        if not self._down:
            log.warning("hub unreachable, buffering locally: %s", exc)
            self._down = True

    def reset(self) -> None:
        if self._down:
            log.info("hub reachable again")
        self._down = False
        self._delay = self._first

    async def sleep(self) -> None:
        await asyncio.sleep(self._delay * random.uniform(0.5, 1.0))
        self._delay = min(self._delay * 2, self._max)


def _gzip(message: BaseModel) -> bytes:
    return gzip.compress(message.model_dump_json().encode(), compresslevel=6)


def _hardware() -> Hardware:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return Hardware(
        cores=os.cpu_count() or 1,
        ram_mb=max(1, ram),
        arch=platform.machine(),
        providers=onnxruntime.get_available_providers(),
    )


def serve(settings: AgentSettings) -> int:
    """Run an agent in this process until SIGINT or SIGTERM, then stop cleanly.

    Returns the exit status: 0 after a stop that was asked for, 2 when the app spec cannot
    run, the hub refused to enrol this device (a wrong enrolment token) or does not speak
    its protocol, with the reason logged. An enrolment awaiting an operator's approval
    keeps waiting."""

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await agent.run()

    try:
        agent = Agent(settings)
    except AppSpecError as exc:
        log.error("cannot start: %s", exc)
        return 2
    status = 0
    try:
        asyncio.run(main())
    except* HubRejected as group:
        for refused in group.exceptions:
            log.error("stopping: %s", refused)
        status = 2
    return status
