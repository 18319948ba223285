"""A simulated fleet: many devices per process, several processes, one summary."""

import asyncio
import json
import multiprocessing
import queue
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgestack.fleetsim._device import SimDevice, Tally
from edgestack.fleetsim._registry import TRANSPORTS, transport_scheme

__all__ = ["SimOptions", "SimProgress", "SimSummary", "simulate"]

# How often each process says how far it got.
_PROGRESS_EVERY_S = 0.5
# The most devices of one process enrolling or catching up with their twin at once.
_STARTING = 64


class SimOptions(BaseModel):
    """What to simulate: `devices` devices named `prefix` + a number, over `transport` (`http`
    or `mqtt://host:port`: through that broker, with each device's own account), each
    sending a telemetry batch every `interval_s` (give or take a tenth) for `duration_s`
    seconds (None: until cancelled), spread over `processes` processes. Tokens are kept in
    `state_file` so the next run against the same hub enrols nobody again."""

    model_config = ConfigDict(frozen=True)

    hub: str
    devices: int = Field(ge=1, le=1_000_000)
    enrol_token: str = Field(min_length=1)
    transport: str = "http"
    interval_s: float = Field(default=10.0, gt=0)
    duration_s: float | None = Field(default=None, gt=0)
    processes: int = Field(default=1, ge=1, le=256)
    # With the number after it, a device id the hub takes: lower case, digits and dashes.
    prefix: str = Field(default="sim-", pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    state_file: Path | None = None
    poll_s: float = Field(default=55.0, ge=0, le=60)
    event_share: float = Field(default=0.02, ge=0, le=1)
    connections: int = Field(default=64, ge=1, le=10_000)
    seed: int = 0

    def device_ids(self) -> list[str]:
        width = len(str(self.devices - 1))
        return [f"{self.prefix}{i:0{width}d}" for i in range(self.devices)]


class SimProgress(BaseModel):
    """How far a run got, summed over its processes."""

    devices: int
    devices_up: int = 0
    reports_acked: int = 0
    reports_failed: int = 0
    desired_changes: int = 0


class SimSummary(BaseModel):
    """What a run did. `reports_acked` counts batches the hub said it stored (a batch
    acked as a duplicate is not counted again); `desired_seen_at` holds the wall-clock time
    each desired change was reported, for measuring how fast the fleet follows its twin."""

    devices: int
    devices_up: int
    enrolled: int
    duration_s: float
    reports_sent: int
    reports_acked: int
    reports_duplicate: int
    reports_failed: int
    reports_per_s: float
    ingest_p50_ms: float | None
    ingest_p99_ms: float | None
    events_sent: int
    events_acked: int
    desired_changes: int
    bundles_downloaded: int
    errors: dict[str, int]
    desired_seen_at: list[float]
    acked_batches: list[str] = Field(
        default_factory=list, description="the id of every batch acked, first or again"
    )


def simulate(
    options: SimOptions,
    on_progress: Callable[[SimProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> SimSummary:
    """Run the fleet of `options` to its end, or until `stop` is set or SIGINT or SIGTERM
    ends it early (when called on the main thread), and sum up what it did."""
    ended = stop or threading.Event()
    transport_scheme(options.transport)
    ids = options.device_ids()
    tokens = _load_tokens(options)
    slices = [ids[p :: options.processes] for p in range(options.processes)]
    if options.processes == 1:
        tally, got = asyncio.run(
            _slice(options, slices[0], tokens, 0, _reporter(on_progress), ended)
        )
        tallies, held = [tally], [got]
    else:
        tallies, held = _in_processes(options, slices, tokens, on_progress, ended)
    if options.state_file is not None:
        _save_tokens(options.state_file, options, {k: v for got in held for k, v in got.items()})
    return _summary(options, tallies)


def _reporter(
    on_progress: Callable[[SimProgress], None] | None,
) -> Callable[[int, Tally], None]:
    def report(devices: int, tally: Tally) -> None:
        if on_progress is not None:
            on_progress(_progress(devices, [tally]))

    return report


def _progress(devices: int, tallies: list[Tally]) -> SimProgress:
    return SimProgress(
        devices=devices,
        devices_up=sum(t.devices_up for t in tallies),
        reports_acked=sum(t.reports_acked for t in tallies),
        reports_failed=sum(t.reports_failed for t in tallies),
        desired_changes=sum(t.desired_changes for t in tallies),
    )


async def _slice(
    options: SimOptions,
    ids: list[str],
    tokens: dict[str, str],
    index: int,
    report: Callable[[int, Tally], None],
    ended: threading.Event | None = None,
) -> tuple[Tally, dict[str, str]]:
    """Run devices `ids` in this process until the run's end; what they did and their tokens."""
    tally = Tally()
    rng = random.Random(f"{options.seed}-{index}")
    make = TRANSPORTS[transport_scheme(options.transport)]
    transport = make(options.hub, options.transport, options.connections)
    stop = asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C or a SIGTERM ends the run as its deadline would: with a summary.
        loop = asyncio.get_running_loop()
        for ending in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(ending, stop.set)
    # Devices come up as fast as the hub answers them: thousands enrolling at once would
    # wait past their timeout, and one whose enrolment the hub took but whose answer it
    # never heard may not enrol again without an operator's approval.
    starting = asyncio.Semaphore(_STARTING)
    devices = [
        SimDevice(
            device_id,
            tokens.get(device_id, ""),
            transport,
            tally,
            enrol_token=options.enrol_token,
            interval_s=options.interval_s,
            poll_s=options.poll_s,
            event_share=options.event_share,
            rng=random.Random(rng.random()),
            starting=starting,
        )
        for device_id in ids
    ]
    runs = asyncio.gather(*(d.run(stop) for d in devices))
    began = time.monotonic()
    try:
        deadline = None if options.duration_s is None else began + options.duration_s
        while deadline is None or time.monotonic() < deadline:
            report(len(ids), tally)
            if runs.done() or stop.is_set() or (ended is not None and ended.is_set()):
                break
            await asyncio.wait({runs}, timeout=_PROGRESS_EVERY_S)
        stop.set()
        await runs
    finally:
        runs.cancel()
        await transport.aclose()
    tally.elapsed_s = time.monotonic() - began
    report(len(ids), tally)
    return tally, {d.device_id: d.token for d in devices if d.token}


def _in_processes(
    options: SimOptions,
    slices: list[list[str]],
    tokens: dict[str, str],
    on_progress: Callable[[SimProgress], None] | None,
    ended: threading.Event,
) -> tuple[list[Tally], list[dict[str, str]]]:
    """Each slice in a process of its own; their progress summed as it comes."""
    context = multiprocessing.get_context("spawn")
    news: Any = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(options, ids, {i: tokens[i] for i in ids if i in tokens}, n, news),
            daemon=True,
        )
        for n, ids in enumerate(slices)
    ]
    for worker in workers:
        worker.start()

    def end(_signal: int = 0, _frame: object = None) -> None:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()

    # A signal to this process alone ends the workers' runs, whose summaries still come.
    previous = (
        {s: signal.signal(s, end) for s in (signal.SIGINT, signal.SIGTERM)}
        if threading.current_thread() is threading.main_thread()
        else {}
    )
    latest = {n: Tally() for n in range(len(slices))}
    done: dict[int, tuple[Tally, dict[str, str]]] = {}
    try:
        stopping = False
        while len(done) < len(workers):
            if ended.is_set() and not stopping:
                # The workers end their runs, then send what they did.
                stopping = True
                end()
            try:
                n, final, fields, held = news.get(timeout=_PROGRESS_EVERY_S)
            except queue.Empty:
                dead = [w for w in workers if w.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"a simulator process exited with {dead[0].exitcode}"
                    ) from None
                continue
            latest[n] = Tally(**fields)
            if final:
                done[n] = (latest[n], held)
            if on_progress is not None:
                on_progress(_progress(options.devices, list(latest.values())))
    finally:
        for ending, handler in previous.items():
            signal.signal(ending, handler)
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    return [done[n][0] for n in sorted(done)], [done[n][1] for n in sorted(done)]


def _worker(
    options: SimOptions, ids: list[str], tokens: dict[str, str], index: int, news: Any
) -> None:
    def report(_devices: int, tally: Tally) -> None:
        # Progress carries counts only; the latencies come once, at the end.
        news.put(
            (
                index,
                False,
                {**asdict(tally), "ingest_ms": [], "desired_seen_at": [], "acked_batches": []},
                {},
            )
        )

    tally, held = asyncio.run(_slice(options, ids, tokens, index, report))
    news.put((index, True, asdict(tally), held))


def _summary(options: SimOptions, tallies: list[Tally]) -> SimSummary:
    # From the devices' start to their end, the processes' own start left out.
    duration_s = max(t.elapsed_s for t in tallies)
    latencies = np.array([ms for t in tallies for ms in t.ingest_ms])
    errors: dict[str, int] = {}
    for t in tallies:
        for reason, n in t.errors.items():
            errors[reason] = errors.get(reason, 0) + n
    acked = sum(t.reports_acked for t in tallies)
    return SimSummary(
        devices=options.devices,
        devices_up=sum(t.devices_up for t in tallies),
        enrolled=sum(t.enrolled for t in tallies),
        duration_s=round(duration_s, 3),
        reports_sent=sum(t.reports_sent for t in tallies),
        reports_acked=acked,
        reports_duplicate=sum(t.reports_duplicate for t in tallies),
        reports_failed=sum(t.reports_failed for t in tallies),
        reports_per_s=round(acked / max(duration_s, 1e-3), 1),
        ingest_p50_ms=_percentile(latencies, 50),
        ingest_p99_ms=_percentile(latencies, 99),
        events_sent=sum(t.events_sent for t in tallies),
        events_acked=sum(t.events_acked for t in tallies),
        desired_changes=sum(t.desired_changes for t in tallies),
        bundles_downloaded=sum(t.bundles_downloaded for t in tallies),
        errors=errors,
        desired_seen_at=sorted(at for t in tallies for at in t.desired_seen_at),
        acked_batches=[batch for t in tallies for batch in t.acked_batches],
    )


def _percentile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values.size else None


def _load_tokens(options: SimOptions) -> dict[str, str]:
    """Tokens a previous run against the same hub saved; none for another hub."""
    path = options.state_file
    if path is None or not path.exists():
        return {}
    state = json.loads(path.read_text())
    return dict(state["tokens"]) if state.get("hub") == options.hub else {}


def _save_tokens(path: Path, options: SimOptions, tokens: dict[str, str]) -> None:
    state = {"hub": options.hub, "tokens": {**_load_tokens(options), **tokens}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
