"""The edge runtime: senses in real time, follows its twin, and sends through the outbox.

Four tasks share one event loop, which only waits: everything that computes or
writes (features, inference, rules, gzip, the outbox's SQLite writes) runs on one
worker thread, in order, and bundles are hashed and unpacked in other threads. The
twin and the uplink tasks retry with backoff while the hub is away, and the outbox
keeps what must be sent on disk until the hub has acknowledged it.

A bundle that cannot be fetched, verified or loaded is reported with its reason and
not tried again until the desired state changes; one that keeps failing at run time
is given up for the bundle before it. Either way the device keeps sensing.
"""

import asyncio
import contextlib
import gzip
import json
import logging
import os
import platform
import random
import signal
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import (
    Literal,
    NoReturn,
    ParamSpec,
    Protocol,
    TypedDict,
    TypeVar,
    cast,
    runtime_checkable,
)

import httpx
import onnxruntime
from pydantic import BaseModel, TypeAdapter, ValidationError

from edgestack.agent.download import download, prune, touch
from edgestack.agent.edge import EdgeServer
from edgestack.agent.federated import PID_FILE, FederatedClient, KeptWindows, kill_left_over
from edgestack.agent.hotpath import HotPath, LoadedModel, StepOutput
from edgestack.agent.joint import Offloader, Send, edge_sender
from edgestack.agent.link import HubLink, HubRejected, HubUnavailable, Link, ProtocolRefused
from edgestack.agent.mqttlink import MqttLink
from edgestack.agent.recent import hard_first
from edgestack.agent.rules import AlarmRule
from edgestack.agent.settings import AgentSettings
from edgestack.agent.shadow import Shadow
from edgestack.agent.store import LocalStore
from edgestack.appspec import AppSpecError, load_app_spec, motor_app
from edgestack.bundle import Bundle, BundleError, BundleStore, PublicKey, TrustedKeys
from edgestack.processing import EXTRACTORS
from edgestack.protocol import (
    BundleRef,
    DataSample,
    DesiredState,
    DeviceStatus,
    EnrolRequest,
    Event,
    EventBatch,
    EventKind,
    FederatedReport,
    FederatedTask,
    Feeds,
    Hardware,
    MonitorReport,
    OffloadPolicy,
    ReportedState,
    SampleBatch,
    WindowBatch,
    WindowRequest,
)
from edgestack.sensing import Source
from edgestack.serving import Answering, ModelServer

__all__ = ["Agent", "DataDirError", "serve"]

log = logging.getLogger("edgestack.agent")

# Labelled windows leave in batches: at most this many, or this old, whichever comes first.
_SAMPLE_BATCH = 64
_SAMPLE_BATCH_AGE_S = 3.0
_PINNED = TypeAdapter(list[PublicKey])

_MAX_RETRY_AFTER_S = 300.0

# Rows kept reach the twin with the next report, at the most this often on their own account.
_KEPT_REPORT_S = 5.0

# Refusals about who the device is, not about the message: it waits in the outbox while
# the device enrols again.
_AUTH_STATUSES = (401, 404)

# An operator may take a while to approve a re-enrolment; asking this often costs nothing.
_APPROVAL_POLL_S = 15.0

P = ParamSpec("P")
R = TypeVar("R")
Severity = Literal["info", "warning", "critical"]


@runtime_checkable
class _FaultInjectable(Protocol):
    def inject(self, kind: str, severity: float = 1.0) -> None: ...


@runtime_checkable
class _Disturbable(Protocol):
    def disturb(self, noise: float) -> None: ...


class DataDirError(Exception):
    """The agent's data dir belongs to another device id."""


class Agent:
    """One device: the app spec's sources and sinks, the twin, the outbox.

    Raises `AppSpecError` at construction when the app spec cannot run, and `DataDirError`
    when the data dir holds another device."""

    def __init__(self, settings: AgentSettings, source: Source | None = None) -> None:
        self.settings = settings
        app = load_app_spec(settings.app) if settings.app else motor_app(settings.seed)
        self.source = source or app.source()
        self.sinks = app.build_sinks()
        self.store = LocalStore(settings.data_dir / "agent.db")
        self._claim_data_dir()
        self.bundles = BundleStore(settings.data_dir / "bundles")
        self.link: Link = (
            HubLink(settings.hub_url)
            if settings.transport == "http"
            else MqttLink(settings.hub_url, settings.transport, settings.device_id)
        )
        pinned = self.store.get("signing_keys")
        self.trusted = TrustedKeys(_PINNED.validate_json(pinned) if pinned else [])
        self.hot = HotPath(
            self.source,
            app.input_spec(self.source),
            monitoring=settings.monitoring,
            detector=settings.detector,
        )
        self.app_rules = app.rules
        self.hot.rule = AlarmRule(app.rules)
        # The shape of one sample (a camera's picture), for the dry run of each new bundle.
        self._frame = self.source.read(0).frame
        self.applied = DesiredState()
        self.error: str | None = None
        self.failed = False
        saved_failure = self.store.get("bundle.failed")
        self._failure = cast(_Failure, json.loads(saved_failure)) if saved_failure else None
        # One thread runs the hot path and every change to it, so changes fall between chunks.
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="edgestack-hotpath")
        self._dropped_seen = self.store.dropped()
        self._enrolled = asyncio.Event()
        self._outbox_filled = asyncio.Event()
        self._report_due = asyncio.Event()
        self._report_due.set()
        # Set by `run` and `_on_worker`, before any other thread can need it.
        self._loop: asyncio.AbstractEventLoop
        self._samples: list[DataSample] = []
        self._samples_since = 0.0
        # A request for recent windows not answered yet: answered once the model has
        # classified as many as it asks for, so there is a choice of the least confident.
        self._windows_asked: WindowRequest | None = None
        # The model whose first classified window was logged: a loaded model may still fail
        # on live windows that the dry run's silence never showed it.
        self._proven: LoadedModel | None = None
        self._enrol_lock = asyncio.Lock()
        # Why an edge node (`serve`) cannot answer, for as long as it runs.
        self._serve_error: str | None = None
        self._offloading: _Offloading | None = None
        self._retired: Offloader | None = None
        # Federated learning: the local dataset windows are kept in (on the hot path's
        # thread), written by a thread of its own, and the client supervised for it.
        self._kept: KeptWindows | None = None
        self._kept_writer = ThreadPoolExecutor(1, thread_name_prefix="edgestack-kept")
        self._kept_written = asyncio.Event()
        self._kept_reported = float("-inf")
        self._federated: _Federated | None = None
        self._federated_dir = settings.data_dir / "federated"

    @property
    def device_id(self) -> str:
        return self.settings.device_id

    def _claim_data_dir(self) -> None:
        # A data dir holds one device's token, model and outbox: run under another id, it
        # would send that device's messages as this one's.
        owner = self.store.get("device_id")
        if owner is None:
            self.store.set("device_id", self.device_id)
        elif owner != self.device_id:
            self.store.close()
            raise DataDirError(
                f"data dir {self.settings.data_dir} holds device '{owner}', not "
                f"'{self.device_id}'; run '{owner}' there, or give this device a data dir of "
                "its own (--data-dir, or EDGESTACK_AGENT_DATA_DIR)"
            )

    async def run(self) -> None:
        """Run until cancelled; on the way out, cut a last telemetry batch and try to send it."""
        self._loop = asyncio.get_running_loop()
        await self._restore()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._sense())
                tasks.create_task(self._follow_twin())
                tasks.create_task(self._send())
                tasks.create_task(self._report_telemetry())
                if self.settings.serve:
                    tasks.create_task(self._serve_edge())
        finally:
            await self._follow_offload(None)
            await self._follow_federated(None)
            await self._on_worker(self._flush_samples)
            # After the hot path's last chunk, which may have kept rows.
            await self._loop.run_in_executor(self._kept_writer, self._write_kept)
            self._kept_writer.shutdown()
            await asyncio.to_thread(self._cut_telemetry, self.link.take_sent_bytes())
            if self._enrolled.is_set():
                try:
                    await asyncio.wait_for(self._drain(), self.settings.drain_timeout_s)
                except (TimeoutError, HubUnavailable, HubRejected):
                    log.warning(
                        "%d messages stay in the outbox for next time", self.store.pending()
                    )
            await self.link.aclose()
            self._worker.shutdown()
            self.store.close()
            self.source.close()
            for sink in self.sinks:
                sink.close()

    async def _on_worker(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn` on the hot path's thread, after what was queued there before it."""
        self._loop = asyncio.get_running_loop()
        return await self._loop.run_in_executor(self._worker, lambda: fn(*args, **kwargs))

    # -- start-up: last good state, offline --------------------------------

    async def _restore(self) -> None:
        # A client a killed run left behind trains on, whatever the desired state says now.
        await asyncio.to_thread(kill_left_over, self._federated_dir / "client" / PID_FILE)
        token = self.store.get("device_token")
        # Enrolled before the hub signed bundles: enrol again to pin its keys.
        if token and self.trusted.keys:
            self.link.token = token
            self._enrolled.set()
        running = self.store.get("running")
        if running:
            # What ran last, even when the desired bundle failed: it is the last good one.
            ref = BundleRef.model_validate_json(running)
            try:
                model = await self._fetch(ref)
            except (BundleError, ValueError, OSError, HubUnavailable, HubRejected) as exc:
                log.warning("%s v%d, which ran last, cannot run: %s", ref.name, ref.version, exc)
            else:
                await self._on_worker(self.hot.use_model, model)
                log.info("running %s v%d again (%s)", ref.name, ref.version, ref.digest[:12])
        saved = self.store.get("desired")
        desired = DesiredState.model_validate_json(saved) if saved else None
        # Bundles a killed run left behind; the desired one's partial download is resumed.
        keep = self._rollback_digests()
        if desired is not None:
            keep |= {ref.digest for ref in (desired.bundle, desired.shadow, *desired.keep) if ref}
        await asyncio.to_thread(prune, self.bundles, keep)
        if desired is not None:
            try:
                await self.apply(desired)
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
            except ProtocolRefused as exc:
                await self._stop_for(exc)
            except HubRejected as exc:
                if exc.status != 403:
                    raise
                if not waiting:
                    log.warning("waiting for approval: %s", exc.detail)
                    waiting = True
                await approval.sleep()
        await asyncio.to_thread(self._pin, response.device_token, response.signing_keys)
        self.link.token = response.device_token
        self._report_due.set()
        self._enrolled.set()
        log.info("enrolled as %s", self.device_id)

    async def _recover(self, exc: HubRejected, token: str) -> None:
        """A hub that no longer knows this device gets a fresh enrolment; a hub that does not
        speak our protocol stops the agent; anything else waits. `token` is the one the
        refused call used: when the twin and the uplink are refused at once, only the first
        enrols again."""
        if isinstance(exc, ProtocolRefused):
            await self._stop_for(exc)
        if exc.status in _AUTH_STATUSES:
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
                if self._report_due.is_set():
                    self._report_due.clear()
                    await self.link.report(self.device_id, self._reported())
                desired = await self._poll_desired()
                # What failed is tried again when the desired state changes, not before.
                if desired is not None and desired != self.applied:
                    await self.apply(desired)
                backoff.reset()
            except HubUnavailable as exc:
                self._report_due.set()
                backoff.note(exc)
                await backoff.sleep()
            except HubRejected as exc:
                self._report_due.set()
                await self._recover(exc, token)

    async def _poll_desired(self) -> DesiredState | None:
        """The long-poll's answer, or None when a report fell due first (a model given up)."""
        poll = asyncio.ensure_future(
            self.link.desired(
                self.device_id, after=self.applied.version, wait_s=self.settings.poll_wait_s
            )
        )
        due = asyncio.ensure_future(self._report_due.wait())
        try:
            await asyncio.wait({poll, due}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            due.cancel()
            if not poll.done():
                poll.cancel()
        return poll.result() if poll.done() and not poll.cancelled() else None

    async def apply(self, desired: DesiredState) -> None:
        """Move towards `desired`. A step that fails is reported, and the rest still applies;
        a bundle the hub cannot deliver now raises HubUnavailable and is tried again. A bundle
        that failed to load or run is not tried again for the same desired version."""
        errors: list[str] = []
        events: list[Event] = []
        wanted = desired.bundle
        running = self.hot.model.ref if self.hot.model else None
        model: LoadedModel | None = None
        swap = wanted is None and running is not None
        failure = None
        if wanted is not None and wanted != running:
            if self._failed_for(desired):
                assert self._failure is not None
                errors.append(self._failure["reason"])
            else:
                kind: EventKind = "load_failed"
                try:
                    model = await self._fetch(wanted)
                    swap = True
                except BundleError as exc:
                    kind, reason = "bundle_refused", f"refused: {exc}"
                except (ValueError, HubRejected, OSError) as exc:
                    reason = f"cannot run here: {exc}"
                if not swap:
                    message = f"bundle {wanted.name} v{wanted.version} {reason}"
                    errors.append(message)
                    events.append(_event(kind, "warning", message, wanted.digest))
                    failure = _Failure(
                        kind=kind, version=desired.version, digest=wanted.digest, reason=message
                    )
        await self._follow_shadow(desired.shadow, model if swap else self.hot.model)
        await self._follow_offload(desired.offload)
        await self._follow_federated(desired.federated)
        await self._on_worker(self._commit, desired, model, swap, events, errors, failure)
        if swap:
            await asyncio.to_thread(prune, self.bundles, self._rollback_digests())

    def _commit(
        self,
        desired: DesiredState,
        model: LoadedModel | None,
        swap: bool,
        events: list[Event],
        errors: list[str],
        failure: "_Failure | None",
    ) -> None:
        """Apply what was prepared, between two chunks; runs on the hot path's thread."""
        before = self.applied
        if failure is not None:
            self._save_failure(failure)
        if swap:
            self._switch_model(model)
        if desired.fault != before.fault:
            errors.extend(self._inject(desired))
        if desired.collect != before.collect:
            self._flush_samples()
            self.hot.collect_label = desired.collect.label if desired.collect else None
            self.hot.restart_windows()
        if _keeping(desired.federated) != _keeping(before.federated):
            self._keep(desired.federated)
        if desired.rules != before.rules:
            self.hot.rule = AlarmRule(desired.rules or self.app_rules)
        if desired.stopped != before.stopped:
            # Nothing read while stopped: no window may join samples from before and after.
            self.hot.restart_windows()
            log.info("app %s", "stopped" if desired.stopped else "started again")
        asked = desired.send_windows
        if asked is not None and str(asked.request_id) != self.store.get("windows.answered"):
            self._windows_asked = asked
        self.applied = desired
        self.store.set("desired", desired.model_dump_json())
        self.failed = self._failed_for(desired, "model_failed")
        self.error = "; ".join(filter(None, [*errors, self._serve_error])) or None
        if self.error:
            log.error("desired state v%d: %s", desired.version, self.error)
        if events:
            self._enqueue_events(events)
        self._want_report()

    def _failed_for(self, desired: DesiredState, kind: EventKind | None = None) -> bool:
        """Whether `desired`'s bundle failed (as `kind`, when given) for this very version."""
        failure, wanted = self._failure, desired.bundle
        return bool(
            failure
            and wanted
            and failure["digest"] == wanted.digest
            and failure["version"] == desired.version
            and kind in (None, failure["kind"])
        )

    def _save_failure(self, failure: "_Failure") -> None:
        """Remember a bundle that failed, across restarts, until the desired state changes."""
        self._failure = failure
        self.store.set("bundle.failed", json.dumps(failure))

    def _want_report(self) -> None:
        """Have the twin task report now; called on the hot path's thread."""
        self._loop.call_soon_threadsafe(self._report_due.set)

    def _pin(self, device_token: str, keys: list[PublicKey]) -> None:
        """Keep the device token and the hub keys it trusts from now on."""
        self.store.set("device_token", device_token)
        self.trusted = TrustedKeys(keys)
        self.store.set("signing_keys", _PINNED.dump_json(self.trusted.keys).decode())

    def _trust(self, path: Path) -> None:
        """Refuse a downloaded bundle whose signature does not hold; blocking."""
        bundle = Bundle.unpack(path.read_bytes())
        if self.trusted.verify(bundle.manifest):
            # The key chain of a bundle signed after a rotation taught a newer hub key.
            self.store.set("signing_keys", _PINNED.dump_json(self.trusted.keys).decode())

    async def _fetch(self, ref: BundleRef) -> LoadedModel:
        bundle = await self._fetch_bundle(ref)
        return await asyncio.to_thread(LoadedModel.load, bundle, ref, self.source, self._frame)

    async def _fetch_bundle(self, ref: BundleRef) -> Bundle:
        await self._download(ref)
        return await asyncio.to_thread(self.bundles.load, ref.digest)

    async def _download(self, ref: BundleRef) -> Path:
        # A bundle takes its name on disk only once its signature holds, so one that was
        # refused never lands, and one that is there was trusted when it came.
        path = await download(self.link, self.bundles, ref.digest, accept=self._trust)
        await asyncio.to_thread(touch, path)
        return path

    async def _served_bundle(self, ref: BundleRef) -> bytes:
        """The packed bundle an edge node is asked to serve, downloaded as its own are."""
        path = await self._download(ref)
        return await asyncio.to_thread(path.read_bytes)

    async def _serve_edge(self) -> None:
        """Answer devices' offloaded windows, once enrolled: the hub's keys, pinned then, are
        what the served bundles are verified against. An address that cannot be held is
        reported, and the device runs on as it would without `serve`."""
        await self._enrolled.wait()
        server = EdgeServer(
            Answering(ModelServer("edge", self.trusted)),
            self._served_bundle,
            self.settings.serve_host,
            self.settings.serve_port,
        )
        try:
            await server.run()
        except OSError as exc:
            message = (
                f"serve: cannot answer on {self.settings.serve_host}:{self.settings.serve_port} "
                f"({exc}); give a free --serve-port"
            )
            log.error("%s", message)
            await self._on_worker(self._cannot_serve, message)

    def _cannot_serve(self, message: str) -> None:
        """Report `message` now and beside every desired state's errors from now on; runs on
        the hot path's thread."""
        self._serve_error = message
        self.error = "; ".join(filter(None, [self.error, message]))
        self._want_report()

    async def _follow_shadow(self, wanted: BundleRef | None, beside: LoadedModel | None) -> None:
        """Run `wanted` in shadow beside `beside`, the model about to run, or stop the one
        running. A candidate that cannot run is reported as a bundle would be, and not run;
        `HubUnavailable` when it cannot be fetched now."""
        running = self.hot.shadow
        if wanted == (running.model.ref if running else None):
            return
        shadow, events = None, []
        if wanted is not None:
            kind: EventKind = "load_failed"
            try:
                bundle = await self._fetch_bundle(wanted)
                model = await asyncio.to_thread(
                    LoadedModel.load, bundle, wanted, self.source, self._frame
                )
                if beside is not None and model.spec != beside.spec:
                    raise ValueError(
                        "its input spec differs from the running model's, and a shadow runs on "
                        "the same windows; deploy it instead of rolling it out in shadow"
                    )
                shadow = Shadow(model, bundle.manifest.reference)
            except BundleError as exc:
                kind, reason = "bundle_refused", f"refused: {exc}"
            except (ValueError, HubRejected, OSError) as exc:
                reason = f"cannot run here: {exc}"
            if shadow is None:
                message = f"shadow {wanted.name} v{wanted.version} {reason}"
                log.error("%s", message)
                events.append(_event(kind, "warning", message, wanted.digest))
        await self._on_worker(self._use_shadow, shadow, events)

    async def _follow_offload(self, policy: OffloadPolicy | None) -> None:
        """Send hard windows as `policy` says from the next chunk on, or stop sending them. A
        policy whose threshold is not calibrated yet sends nothing."""
        running = self._offloading
        if policy == (running.offloader.policy if running else None):
            return
        if running is not None:
            await self._on_worker(self._use_offloader, None)
            running.task.cancel()
            try:
                await running.task
            except asyncio.CancelledError:
                pass
            except Exception:  # its windows fell back meanwhile; the device must run on
                log.exception("the offloading task had failed")
            if running.client is not None:
                await running.client.aclose()
            running.offloader.retire()
            # What it counted since the last cut goes into the next, whatever follows it.
            self._retired = running.offloader
            self._offloading = None
        if policy is None or policy.threshold is None:
            return
        client = None
        send: Send = self.link.infer
        if policy.tier == "edge":
            assert policy.server is not None  # the policy's own check: edge needs a server
            client = httpx.AsyncClient(base_url=policy.server, timeout=policy.timeout_s)
            send = edge_sender(client)
        offloader = Offloader(policy, send, asyncio.get_running_loop())
        retired, self._retired = self._retired, None
        if retired is not None:
            offloader.carry_over(retired)
        self._offloading = _Offloading(offloader, asyncio.create_task(offloader.run()), client)
        await self._on_worker(self._use_offloader, offloader)
        log.info(
            "offloading windows whose %s reaches %.3f to %s v%d (%s)",
            policy.gate,
            policy.threshold,
            policy.model.name,
            policy.model.version,
            policy.server or "the hub",
        )

    def _keep(self, task: FederatedTask | None) -> None:
        """Keep windows as `task` says from the next chunk on; on the hot path's thread."""
        keep = task.keep if task else None
        kept = self._kept
        if kept is not None and (keep is None or keep.dataset != kept.dataset):
            self._kept_writer.submit(self._write_kept, kept)
            kept = None
        if keep is not None and kept is None:
            # Read on the writer's thread, after the writes queued there: what a dataset kept
            # moments ago is on disk before it is read back.
            kept = self._kept_writer.submit(KeptWindows, self._federated_dir, keep.dataset).result()
        self._kept = kept
        self.hot.keep(keep.label if keep else None, raw=task is not None and task.rows == "raw")
        if keep is not None:
            log.info("keeping windows as %s in local dataset %s", keep.label, keep.dataset)

    def _write_kept(self, kept: KeptWindows | None = None) -> None:
        """Put `kept`'s new rows (by default the dataset kept now) on disk; on the writer's
        thread. A write that fails is logged: the rows stay in memory for the next one."""
        kept = kept or self._kept
        try:
            if kept is not None and kept.write():
                self._loop.call_soon_threadsafe(self._kept_written.set)
                if time.monotonic() - self._kept_reported >= _KEPT_REPORT_S:
                    self._kept_reported = time.monotonic()
                    self._want_report()
        except OSError:
            log.exception("cannot write local dataset %s", kept.dataset if kept else "")

    async def _follow_federated(self, task: FederatedTask | None) -> None:
        """Run a Flower client for `task`'s aggregator, training on its local dataset once
        that has rows, or stop the one running."""
        wanted = (task.aggregator, task.dataset) if task and task.aggregator else None
        running = self._federated
        if wanted == ((running.aggregator, running.dataset) if running else None):
            return
        if running is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running.task
            self._federated = None
            self._want_report()
        if wanted is None:
            return
        aggregator, dataset = wanted
        client = FederatedClient(
            aggregator,
            KeptWindows.windows_file(self._federated_dir, dataset),
            self._federated_dir / "client",
            "supernode",
            exited=self._client_exited,
        )
        supervising = asyncio.create_task(self._supervise(client))
        self._federated = _Federated(aggregator, dataset, client, supervising)

    def _client_exited(self, message: str) -> None:
        """Tell the hub the federated client exited; called on the event loop."""
        event = _event("error", "warning", message, None)
        # Events reach the sinks from the hot path's thread only.
        self._worker.submit(self._enqueue_events, [event])
        self._want_report()

    async def _supervise(self, client: FederatedClient) -> None:
        """Start `client` once its windows file is written, and keep it running."""
        while True:
            self._kept_written.clear()
            if await asyncio.to_thread(client.windows.exists):
                break
            await self._kept_written.wait()
        self._want_report()
        await client.run()

    def _use_offloader(self, offloader: Offloader | None) -> None:
        """Queue hard windows for `offloader` from the next chunk on; on the hot path's thread."""
        self.hot.offload = offloader

    def _use_shadow(self, shadow: Shadow | None, events: list[Event]) -> None:
        """Run `shadow` from the next chunk on; runs on the hot path's thread."""
        self.hot.shadow = shadow
        if shadow is not None:
            ref = shadow.model.ref
            log.info("running %s v%d in shadow (%s)", ref.name, ref.version, ref.digest[:12])
        if events:
            # The hub's business, not the app's: a candidate's trouble reaches no sink.
            self._enqueue("events", EventBatch(batch_id=uuid.uuid4(), events=events), len(events))

    def _switch_model(self, model: LoadedModel | None) -> None:
        self.hot.use_model(model)
        self._save_running()
        if model is not None:
            ref = model.ref
            log.info("running %s v%d (%s)", ref.name, ref.version, ref.digest[:12])
            message = f"running {ref.name} v{ref.version}"
            self._enqueue_events([_event("model_loaded", "info", message, ref.digest)])

    def _save_running(self) -> None:
        """Save what runs now: the next start runs it first, whatever the desired state."""
        model = self.hot.model
        self.store.set("running", model.ref.model_dump_json() if model else None)

    def _rollback_digests(self) -> set[str]:
        """The bundles pruning must keep, besides the newest: what runs and what ran before,
        and what a rollout runs in shadow or asks to keep."""
        shadow = self.hot.shadow
        return {m.ref.digest for m in (self.hot.model, self.hot.previous) if m is not None} | {
            ref.digest for ref in [*self.applied.keep, *([shadow.model.ref] if shadow else [])]
        }

    def _inject(self, desired: DesiredState) -> list[str]:
        fault = desired.fault
        if not isinstance(self.source, _FaultInjectable):
            return (
                ["fault: this device's source is real and cannot simulate faults"] if fault else []
            )
        noise = fault.noise if fault else 1.0
        if noise != 1.0 and not isinstance(self.source, _Disturbable):
            return ["fault.noise: this device's simulated source cannot be disturbed; leave it 1"]
        try:
            if fault is None:
                self.source.inject("normal")
            else:
                self.source.inject(fault.kind, fault.severity)
            if isinstance(self.source, _Disturbable):
                self.source.disturb(noise)
        except ValueError as exc:
            return [f"fault: {exc}"]
        self.hot.restart_windows()
        return []

    def _status(self) -> DeviceStatus:
        if self.failed:
            return "failed"
        if self.error:
            return "error"
        if self.applied.stopped:
            return "stopped"
        if self.hot.collect_label is not None:
            return "collecting"
        return "running" if self.hot.model else "idle"

    def _reported(self) -> ReportedState:
        model = self.hot.model
        return ReportedState(
            desired_version=self.applied.version,
            bundle=model.ref if model else None,
            status=self._status(),
            error=self.error,
            hardware=_hardware(),
            feeds=Feeds(
                sensors=list(self.source.channels),
                rate_hz=self.source.rate_hz,
                extractors=EXTRACTORS.names(),
            ),
            rules=self.hot.rule.params,
            shadow=self.hot.shadow.model.ref if self.hot.shadow else None,
            federated=self._federated_report(),
        )

    def _federated_report(self) -> FederatedReport | None:
        if self.applied.federated is None:
            return None
        running = self._federated
        return FederatedReport(
            kept=len(self._kept) if self._kept is not None else 0,
            aggregator=running.aggregator if running else None,
            client_starts=running.client.starts if running else 0,
        )

    # -- the hot path, on its worker thread ----------------------------------

    async def _sense(self) -> None:
        period = self.settings.chunk_s
        samples = max(1, round(self.source.rate_hz * period))
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            await self._on_worker(self._tick, samples)
            deadline = max(deadline + period, loop.time() - period)
            await asyncio.sleep(deadline - loop.time())

    def _tick(self, samples: int) -> None:
        if self.applied.stopped:
            return  # the app is stopped: its sources are not read, its model does not run
        out = self.hot.step(samples)
        if out.failure is not None:
            self._failed_chunk(out)
        model = self.hot.model
        if out.labels and model is not None and model is not self._proven:
            self._proven = model
            log.info("%s v%d classified its first window", model.ref.name, model.ref.version)
        if out.events:
            self._enqueue_events(out.events)
        if self._windows_asked is not None and len(self.hot.recent) >= self._windows_asked.count:
            self._send_windows(self._windows_asked)
        self._samples.extend(out.samples)
        kept = self._kept
        if out.kept is not None and kept is not None and self.hot.keep_label is not None:
            kept.add(out.kept, self.hot.keep_label, self.hot.kept_spec)
            if kept.due():
                self._kept_writer.submit(self._write_kept, kept)
        now = time.monotonic()
        if self._samples and (
            len(self._samples) >= _SAMPLE_BATCH or now - self._samples_since >= _SAMPLE_BATCH_AGE_S
        ):
            self._flush_samples()
        elif not self._samples:
            self._samples_since = now

    def _failed_chunk(self, out: StepOutput) -> None:
        if self.hot.failures == 1:
            # Once per run of failures: every chunk would flood the log.
            log.error("the hot path failed, counting until it recovers: %s", out.failure)
        failed = out.given_up
        if failed is None:
            return
        ref = failed.ref
        message = (
            f"bundle {ref.name} v{ref.version} failed at run time and was given up: {out.failure}"
        )
        log.error("%s", message)
        self._save_failure(
            _Failure(
                kind="model_failed", version=self.applied.version, digest=ref.digest, reason=message
            )
        )
        self.failed = True
        self.error = message
        self._save_running()
        self._enqueue_events([_event("model_failed", "critical", message, ref.digest)])
        self._want_report()

    def _send_windows(self, asked: WindowRequest) -> None:
        """Answer `asked`, once, with the windows the offload gate found hard, then those the
        running model was least sure of."""
        model = self.hot.model
        assert model is not None  # the windows are cleared whenever the model changes
        try:
            windows = hard_first(self.hot.hard, self.hot.recent, asked.count)
            batch = WindowBatch(
                batch_id=uuid.uuid4(),
                request_id=asked.request_id,
                spec=self.hot.spec,
                bundle_digest=model.ref.digest,
                windows=windows,
            )
        except ValidationError as exc:  # a label the wire cannot carry; nothing to retry
            log.error("cannot send recent windows for review: %s", exc)
        else:
            self._enqueue("windows", batch, len(windows))
            log.info("sent %d recent windows for review", len(windows))
        self.store.set("windows.answered", str(asked.request_id))
        self._windows_asked = None

    def _flush_samples(self) -> None:
        if self._samples:
            # Flushed before a new collection applies: `applied` still names these samples'.
            dataset = self.applied.collect.dataset if self.applied.collect else "default"
            batch = SampleBatch(
                batch_id=uuid.uuid4(), spec=self.hot.spec, samples=self._samples, dataset=dataset
            )
            self._enqueue("samples", batch, len(self._samples))
            self._samples = []

    def _enqueue_events(self, events: list[Event]) -> None:
        for event in events:
            if event.kind.startswith("alarm"):
                log.warning("%s: %s", event.kind, event.message)
            for sink in self.sinks:
                sink.emit(event)
        self._enqueue("events", EventBatch(batch_id=uuid.uuid4(), events=events), len(events))

    def _enqueue(self, kind: str, message: BaseModel, items: int) -> None:
        self.store.enqueue(kind, _gzip(message), items=items)
        self._loop.call_soon_threadsafe(self._outbox_filled.set)

    # -- telemetry and the uplink -------------------------------------------

    async def _report_telemetry(self) -> None:
        while True:
            await asyncio.sleep(self.applied.telemetry_interval_s)
            await asyncio.to_thread(self._cut_telemetry, self.link.take_sent_bytes())

    def _cut_telemetry(self, uplink: int) -> None:
        """Close the telemetry interval; runs in a thread of its own, so a slow model never
        holds up the heartbeat."""
        model = self.hot.model
        digest = model.ref.digest if model else None
        dropped, dead = self.store.dropped(), self.store.dead_lettered()
        pending = self.store.pending()
        if dropped > self._dropped_seen:
            message = (
                f"the outbox was full and dropped {dropped - self._dropped_seen} messages, "
                "oldest telemetry first; the hub was away longer than the outbox holds"
            )
            self._dropped_seen = dropped
            event = _event("outbox_dropped", "warning", message, None)
            # Events reach the sinks from the hot path's thread only.
            self._worker.submit(self._enqueue_events, [event])
        shadow = self.hot.shadow
        monitoring = _report_of("monitoring", lambda: self._monitoring(model))
        shadowed = _report_of("shadow", lambda: shadow.take() if shadow else None)
        offload = self.hot.offload or self._retired
        offloaded = _report_of("offload", lambda: offload.take() if offload else None)
        if offload is self._retired:
            self._retired = None
        self.store.enqueue_numbered(
            "telemetry",
            lambda seq: _gzip(
                self.hot.telemetry.cut(
                    seq,
                    uplink,
                    digest,
                    outbox_dropped=dropped,
                    dead_lettered=dead,
                    outbox_pending=pending,
                    monitoring=monitoring,
                ).model_copy(update={"shadow": shadowed, "offload": offloaded})
            ),
        )
        self._loop.call_soon_threadsafe(self._outbox_filled.set)

    def _monitoring(self, model: LoadedModel | None) -> MonitorReport | None:
        """The interval's monitoring of `model`, the model this cut names; none when a swap
        between the two reads left the monitor watching another."""
        monitor = self.hot.monitor
        if monitor is None or model is None or monitor.ref != model.ref:
            return None
        return monitor.take()

    async def _send(self) -> None:
        await self._enrolled.wait()
        backoff = _Backoff()
        while True:
            token = self.link.token
            try:
                if not await self._drain():
                    self._outbox_filled.clear()
                    if await asyncio.to_thread(self.store.peek) is None:
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
        while (item := await asyncio.to_thread(self.store.peek)) is not None:
            try:
                await self.link.ingest(self.device_id, item.kind, item.body)
            except HubRejected as exc:
                if exc.status in _AUTH_STATUSES or isinstance(exc, ProtocolRefused):
                    raise
                # The hub will never take this message; kept aside, it blocks nothing behind.
                log.error("dead-lettered a %s batch the hub refused: %s", item.kind, exc)
                await asyncio.to_thread(self.store.dead_letter, item, str(exc))
            else:
                await asyncio.to_thread(self.store.ack, item)
            sent = True
        return sent


@dataclass(frozen=True)
class _Offloading:
    """An offload policy followed: its offloader, the task sending the hard windows, and the
    client of its edge node (none for the cloud tier, reached through the hub's link)."""

    offloader: Offloader
    task: "asyncio.Task[None]"
    client: httpx.AsyncClient | None


@dataclass(frozen=True)
class _Federated:
    """A Flower client supervised for `aggregator`, training on local dataset `dataset`."""

    aggregator: str
    dataset: str
    client: FederatedClient
    task: "asyncio.Task[None]"


def _keeping(task: FederatedTask | None) -> tuple[object, ...]:
    """What of `task` decides which windows are kept, and how."""
    return (task.keep, task.rows) if task else (None, "features")


class _Failure(TypedDict):
    """A bundle that failed for one desired version, and how."""

    kind: EventKind
    version: int
    digest: str
    reason: str


class _Backoff:
    """Exponential backoff with jitter, logging an outage once rather than every retry;
    never shorter than the wait a hub asked for with `Retry-After`."""

    def __init__(self, first_s: float = 0.2, max_s: float = 5.0) -> None:
        self._first, self._max = first_s, max_s
        self._delay = first_s
        self._asked_s = 0.0
        self._down = False

    def note(self, exc: HubUnavailable) -> None:
        # Honoured up to a bound: a hub's mistake must not silence a device for a day.
        self._asked_s = min(exc.retry_after_s or 0.0, _MAX_RETRY_AFTER_S)
        if not self._down:
            log.warning("hub unreachable, buffering locally: %s", exc)
            self._down = True

    def reset(self) -> None:
        if self._down:
            log.info("hub reachable again")
        self._down = False
        self._delay = self._first

    async def sleep(self) -> None:
        await asyncio.sleep(max(self._asked_s, self._delay * random.uniform(0.5, 1.0)))
        self._delay = min(self._delay * 2, self._max)


def _event(kind: EventKind, severity: Severity, message: str, digest: str | None) -> Event:
    return Event(
        event_id=uuid.uuid4(),
        at=datetime.now(UTC),
        kind=kind,
        severity=severity,
        message=message[:2000],
        bundle_digest=digest,
    )


def _report_of(what: str, take: Callable[[], R]) -> R | None:
    """A report for the telemetry cut; one that fails is logged and left out, so the counts
    still go up and the agent keeps running."""
    try:
        return take()
    except Exception:  # monitoring is the hub's view of the model, never a reason to stop
        log.exception("the %s report failed and is left out of this telemetry batch", what)
        return None


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
    run, the data dir holds another device, the hub refused to enrol this device (a wrong
    enrolment token) or does not speak its protocol, with the reason logged. An enrolment
    awaiting an operator's approval keeps waiting."""

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
    except (AppSpecError, DataDirError) as exc:
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
