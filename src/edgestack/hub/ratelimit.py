"""How often one client address may try something: a sliding window kept in memory.

Per hub process: each process counts on its own, so behind a load balancer spreading calls
over N processes an address gets up to N times the limit. The address is the peer's, as the
ASGI server saw it; behind a reverse proxy that is the proxy's unless the server is told to
trust its forwarded headers (uvicorn's `--forwarded-allow-ips`).
"""

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import HTTPException, Request

__all__ = ["SlidingWindow", "address", "too_many"]

# The most addresses kept; past it those hit longest ago are forgotten first, so a flood of
# addresses costs bounded memory (and at worst lets a forgotten address start afresh).
_MAX_KEYS = 10_000


class SlidingWindow:
    """At most `limit` hits per key in any `window_s` seconds, for at most `max_keys` keys.

    >>> failures = SlidingWindow(limit=2, window_s=60)
    >>> failures.hit("10.0.0.7"); failures.hit("10.0.0.7")
    >>> failures.wait_s("10.0.0.7") > 0
    True
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = _MAX_KEYS,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        # Ordered by each key's latest hit, oldest first: expired keys are a prefix to cut.
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        # Sync routes run in a thread pool: two requests may count at once.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many keys have a hit in the window (or are not yet swept)."""
        return len(self._hits)

    def wait_s(self, key: str) -> float:
        """Seconds until `key` may hit again; 0 when it may now."""
        with self._lock:
            now = self._sweep()
            return self._wait_s(self._recent(key, now), now)

    def hit(self, key: str) -> None:
        """Count a hit of `key` now."""
        with self._lock:
            self._append(key, self._sweep())

    def take(self, key: str) -> float:
        """Count a hit of `key` if it may hit now and answer 0; else seconds to wait, counting
        nothing. One step, so callers at once never count past the limit between them."""
        with self._lock:
            now = self._sweep()
            if wait_s := self._wait_s(self._recent(key, now), now):
                return wait_s
            self._append(key, now)
            return 0.0

    def refund(self, key: str) -> None:
        """Take back the latest hit of `key`: a `take` that turned out not to count."""
        with self._lock:
            hits = self._hits.get(key)
            if hits:
                hits.pop()
            if not hits:
                self._hits.pop(key, None)

    def _wait_s(self, hits: deque[float] | None, now: float) -> float:
        if hits is None or len(hits) < self.limit:
            return 0.0
        return hits[0] + self.window_s - now

    def _append(self, key: str, now: float) -> None:
        # At most `limit` kept: older hits cannot matter once that many are newer.
        hits = self._recent(key, now) or deque(maxlen=self.limit)
        self._hits.pop(key, None)
        hits.append(now)
        self._hits[key] = hits
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)

    def _sweep(self) -> float:
        """Forget the keys whose every hit is out of the window; the time now."""
        now = self._clock()
        while self._hits:
            key, hits = next(iter(self._hits.items()))
            if hits and hits[-1] > now - self.window_s:
                break
            del self._hits[key]
        return now

    def _recent(self, key: str, now: float) -> deque[float] | None:
        """The hits of `key` still in the window; None, and the key forgotten, when none."""
        hits = self._hits.get(key)
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if not hits:
            self._hits.pop(key, None)
            return None
        return hits


def address(request: Request) -> str:
    """The client address requests are counted by."""
    return request.client.host if request.client else "unknown"


def too_many(what: str, limit: SlidingWindow, wait_s: float) -> HTTPException:
    """The 429 answer for `what` (e.g. "failed logins") past `limit`, retry after `wait_s`."""
    seconds = max(1, math.ceil(wait_s))
    return HTTPException(
        429,
        f"too many {what} from this address (at most {limit.limit} in {limit.window_s:g} s, "
        f"counted by each hub process); try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )
