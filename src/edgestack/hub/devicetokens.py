"""Which token each device holds, remembered between its calls."""

import threading
import time

__all__ = ["DeviceTokens"]


class DeviceTokens:
    """The sha256 of each device's token as the database held it, kept `ttl_s` seconds so a
    device's every call need not look it up.

    `forget` drops a device's entry once its token changes (an enrolment in this process),
    and no look-up begun before that may put the old one back. A token changed by another
    process sharing the database is learnt at the latest `ttl_s` later.
    """

    def __init__(self, ttl_s: float = 30.0) -> None:
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, float]] = {}
        self._forgotten = 0

    def get(self, device_id: str) -> str | None:
        """The hash remembered for `device_id`; None when there is none, or it is too old."""
        entry = self._known.get(device_id)
        if entry is None or time.monotonic() - entry[1] > self._ttl_s:
            return None
        return entry[0]

    def mark(self) -> int:
        """To pass to `put` with what a look-up begun now finds."""
        return self._forgotten

    def put(self, device_id: str, token_sha256: str, mark: int) -> None:
        """Remember what a look-up begun at `mark` found, unless a token changed since."""
        with self._lock:
            if mark == self._forgotten:
                self._known[device_id] = (token_sha256, time.monotonic())

    def forget(self, device_id: str) -> None:
        with self._lock:
            self._forgotten += 1
            self._known.pop(device_id, None)
