"""How often one client address may try something: a sliding window kept in memory.

Per hub process: each process counts on its own, so behind a load balancer spreading calls
over N processes an address gets up to N times the limit. The address is the peer's, as the
ASGI server saw it; behind a reverse proxy that is the proxy's unless the server is told to
trust its forwarded headers (uvicorn's `--forwarded-allow-ips`).
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import HTTPException, Request

__all__ = ["SlidingWindow", "address", "too_many"]

# Past this many addresses, those with no hit left in the window are forgotten.
_SWEEP_ABOVE = 10_000


class SlidingWindow:
    """At most `limit` hits per key in any `window_s` seconds.

    >>> failures = SlidingWindow(limit=2, window_s=60)
    >>> failures.hit("10.0.0.7"); failures.hit("10.0.0.7")
    >>> failures.wait_s("10.0.0.7") > 0
    True
    """

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        # Sync routes run in a thread pool: two requests may count at once.
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Seconds until `key` may hit again; 0 when it may now."""
        with self._lock:
            now = self._clock()
            hits = self._recent(key, now)
            return 0.0 if len(hits) < self.limit else hits[0] + self.window_s - now

    def hit(self, key: str) -> None:
        """Count a hit of `key` now."""
        with self._lock:
            now = self._clock()
            self._recent(key, now).append(now)
            if len(self._hits) > _SWEEP_ABOVE:
                for stale in [k for k, hits in self._hits.items() if not self._recent(k, now)]:
                    del self._hits[stale]

    def take(self, key: str) -> float:
        """Count a hit of `key` if it may hit now and answer 0; else seconds to wait."""
        with self._lock:
            now = self._clock()
            hits = self._recent(key, now)
            if len(hits) >= self.limit:
                return hits[0] + self.window_s - now
            hits.append(now)
            return 0.0

    def _recent(self, key: str, now: float) -> deque[float]:
        # At most `limit` kept: older hits cannot matter once that many are newer.
        hits = self._hits.setdefault(key, deque(maxlen=self.limit))
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
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
