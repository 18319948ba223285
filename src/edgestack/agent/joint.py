"""Joint inference on a device: the hot path queues the windows its offload policy finds
hard, and a task on the event loop sends them to the policy's server, counting which tier's
answer came back in time and which windows fell back to the device's own. A device running a
split net's head sends, for the windows its exit is not sure of, the head's intermediate
tensor to the tail the policy names, in the same way.

The hot path never waits on the network: it only appends to a bounded queue, and a window
that finds the queue full falls back at once. Requests are encoded and answers decoded in
worker threads.
"""

import asyncio
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable

import httpx
import numpy as np

from edgestack.bundle import SplitPlan
from edgestack.offload import to_offload
from edgestack.protocol import (
    InferenceAnswer,
    OffloadPolicy,
    OffloadReport,
    RowsKind,
    ServingTier,
    problem_detail,
)
from edgestack.serving import offload_request

__all__ = ["MAX_QUEUED", "Offloader", "Send", "ServerRefused", "edge_sender"]

MAX_QUEUED = 256
"""Windows waiting to be sent, at most; more fall back to the device's own answer."""
_MAX_BATCH = 64  # windows a request
_MAX_VALUES = 500_000  # values a request, well within what the wire takes
_MAX_LATENCIES = 10_000  # per interval, for its percentiles

Send = Callable[[bytes], Awaitable[bytes]]
"""Sends an `InferenceRequest`'s JSON to a server and gives its answer's JSON; raises when it
gets none."""


class ServerRefused(Exception):
    """A server answered, but not with an answer."""


def edge_sender(client: httpx.AsyncClient) -> Send:
    """Sends requests to the edge node `client`'s base URL points at."""

    async def send(body: bytes) -> bytes:
        response = await client.post(
            "/api/v1/infer", content=body, headers={"Content-Type": "application/json"}
        )
        if response.status_code != 200:
            raise ServerRefused(f"{response.status_code}: {problem_detail(response.content)}")
        return response.content

    return send


class Offloader:
    """Sends the windows `policy` finds hard to its server through `send`. `offer` is called
    on the hot path's thread, `run` on the event loop, `take` on any."""

    def __init__(
        self,
        policy: OffloadPolicy,
        send: Send,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        if policy.threshold is None:
            raise ValueError("policy.threshold: not calibrated; a device offloads nothing yet")
        self.policy = policy
        self._threshold = policy.threshold
        self._send = send
        self._loop = loop
        self._lock = threading.Lock()
        # Rows of a kind, or a split head's tensors with the plan that cut it.
        self._queue: deque[tuple[RowsKind | SplitPlan, np.ndarray]] = deque()
        self._queued = 0
        self._ready = asyncio.Event()
        self._reset()

    def _reset(self) -> None:
        self._windows = 0
        self._answered: Counter[ServingTier] = Counter()
        self._predictions: Counter[str] = Counter()
        self._fallbacks = 0
        self._bytes = 0
        self._latencies_ms: list[float] = []

    def offer(self, rows: np.ndarray, probabilities: np.ndarray, input: RowsKind) -> np.ndarray:
        """Queue the windows of `rows` whose gate score, from `probabilities`, reaches the
        threshold; those that find the queue full, or hold values no request can carry,
        fall back. Windows whose probabilities are not finite cannot be scored, and stay.
        Returns which windows the gate found hard."""
        scored = np.isfinite(probabilities).all(axis=1)
        hard = np.zeros(len(rows), dtype=bool)
        if scored.any():
            hard[scored] = to_offload(probabilities[scored], self.policy.gate, self._threshold)
        self._queue_hard(rows, hard, input)
        return hard

    def offer_tensors(
        self, tensors: np.ndarray, probabilities: np.ndarray, plan: SplitPlan
    ) -> np.ndarray:
        """A split net's head ran: queue the intermediate `tensors` of the windows whose exit
        `probabilities` fall short of `plan`'s threshold, for the tail the policy names; the
        others the exit answers. As `offer`, a full queue falls back, and which windows were
        hard is returned."""
        scored = np.isfinite(probabilities).all(axis=1)
        hard = np.zeros(len(tensors), dtype=bool)
        hard[scored] = probabilities[scored].max(axis=1) < plan.threshold
        self._queue_hard(tensors, hard, plan)
        return hard

    def _queue_hard(self, rows: np.ndarray, hard: np.ndarray, input: RowsKind | SplitPlan) -> None:
        if not hard.any():
            return
        picked = rows[hard]
        sendable = picked[np.isfinite(picked.reshape(len(picked), -1)).all(axis=1)]
        with self._lock:
            self._windows += len(picked)
            room = MAX_QUEUED - self._queued
            queued = sendable[:room]
            self._fallbacks += len(picked) - len(queued)
            if len(queued):
                self._queue.append((input, queued))
                self._queued += len(queued)
        if len(queued):
            self._loop.call_soon_threadsafe(self._ready.set)

    async def run(self) -> None:
        """Send what is queued, a batch at a time, until cancelled."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while (batch := self._take_batch()) is not None:
                await self._offload(*batch)

    def retire(self) -> None:
        """Once its task is stopped: the windows still queued fall back, as no answer will
        come for them."""
        with self._lock:
            self._fallbacks += self._queued
            self._queue.clear()
            self._queued = 0

    def carry_over(self, before: "Offloader") -> None:
        """Count, in this offloader's next report, what `before` (the retired offloader this
        one replaces) counted since its last."""
        with before._lock:
            counted = (
                before._windows,
                before._answered,
                before._predictions,
                before._fallbacks,
                before._bytes,
                before._latencies_ms,
            )
            before._reset()
        windows, answered, predictions, fallbacks, sent, latencies = counted
        with self._lock:
            self._windows += windows
            self._answered.update(answered)
            self._predictions.update(predictions)
            self._fallbacks += fallbacks
            self._bytes += sent
            self._latencies_ms.extend(latencies[: _MAX_LATENCIES - len(self._latencies_ms)])

    def take(self) -> OffloadReport:
        """What happened since the last call, and start counting afresh."""
        with self._lock:
            latencies = np.asarray(self._latencies_ms)
            report = OffloadReport(
                windows=self._windows,
                answered=dict(self._answered),
                predictions=dict(self._predictions),
                fallbacks=self._fallbacks,
                uplink_bytes=self._bytes,
                latency_ms_p50=float(np.percentile(latencies, 50)) if latencies.size else None,
                latency_ms_p95=float(np.percentile(latencies, 95)) if latencies.size else None,
            )
            self._reset()
        return report

    def _take_batch(self) -> tuple[RowsKind | SplitPlan, np.ndarray] | None:
        with self._lock:
            if not self._queue:
                return None
            input, rows = self._queue.popleft()
            # A request holds at most so many values: raw windows go fewer at a time.
            per_window = max(1, rows[0].size)
            most = max(1, min(_MAX_BATCH, _MAX_VALUES // per_window))
            if len(rows) > most:
                self._queue.appendleft((input, rows[most:]))
                rows = rows[:most]
            self._queued -= len(rows)
        return input, rows

    async def _offload(self, input: RowsKind | SplitPlan, rows: np.ndarray) -> None:
        try:
            answer, sent, elapsed_ms = await self._ask(input, rows)
        except asyncio.CancelledError:
            # Stopped on the way (the policy changed, the agent stops): no answer came.
            with self._lock:
                self._fallbacks += len(rows)
            raise
        with self._lock:
            self._bytes += sent
            if answer is None:
                self._fallbacks += len(rows)
            else:
                self._answered[answer.tier] += len(rows)
                self._predictions.update(answer.labels)
                if len(self._latencies_ms) < _MAX_LATENCIES:
                    self._latencies_ms.append(elapsed_ms)

    async def _ask(
        self, input: RowsKind | SplitPlan, rows: np.ndarray
    ) -> tuple[InferenceAnswer | None, int, float]:
        """The server's answer for `rows`, None when none came in time; the bytes sent, and
        the milliseconds it took."""
        started = self._loop.time()
        body = b""
        answer: InferenceAnswer | None = None
        try:
            # A window too wide for any request is left to the device as well.
            body = await asyncio.to_thread(offload_request, self.policy.model, input, rows)
            # Not wait_for, which in Python 3.11 takes a stop that lands as the request fails
            # for the failure, leaving this task running after it was stopped.
            async with asyncio.timeout(self.policy.timeout_s):
                reply = await self._send(body)
            answer = await asyncio.to_thread(InferenceAnswer.model_validate_json, reply)
            if len(answer.labels) != len(rows):
                raise ServerRefused(f"{len(answer.labels)} labels for {len(rows)} windows")
        except Exception:  # whatever the server did or did not do, the device answers alone
            answer = None
        return answer, len(body), (self._loop.time() - started) * 1000
