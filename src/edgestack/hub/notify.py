"""Wakes long-polls when a device's desired state changes."""

import asyncio
from collections.abc import Callable

__all__ = ["DesiredNotifier"]


class DesiredNotifier:
    """One `asyncio.Event` per watched device, replaced each time it fires.

    `watch` runs on the event loop; `notify` and `close` may run on any thread (desired
    state is written from FastAPI's worker threads) and hop onto the loop to fire.
    A watcher takes its event *before* reading the stored state, so a change committed
    after that read always sets the event it waits on.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: dict[str, asyncio.Event] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._closing = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._closing = False

    def watch(self, device_id: str) -> asyncio.Event:
        """The event the next change of `device_id` sets; already set while closing."""
        if self._closing:
            fired = asyncio.Event()
            fired.set()
            return fired
        return self._changed.setdefault(device_id, asyncio.Event())

    def listen(self, listener: Callable[[str], None]) -> None:
        """Call `listener` on the loop with every device whose desired state changes, watched
        or not (the MQTT bridge publishes each one)."""
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[str], None]) -> None:
        """Stop calling `listener`, given to `listen` before."""
        self._listeners.remove(listener)

    def watching(self, device_id: str) -> bool:
        return device_id in self._changed

    @property
    def closing(self) -> bool:
        """Whether the hub is stopping: streams end rather than wait for more."""
        return self._closing

    def notify(self, device_id: str) -> None:
        self._on_loop(self._fire, device_id)

    def close(self) -> None:
        """Answer every long-poll now, and every later one at once: the hub is stopping."""
        self._on_loop(self._fire_all)

    def _on_loop(self, call: Callable[..., None], *args: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(call, *args)

    def _fire(self, device_id: str) -> None:
        for listener in self._listeners:
            listener(device_id)
        changed = self._changed.pop(device_id, None)
        if changed is not None:
            changed.set()

    def _fire_all(self) -> None:
        self._closing = True
        for changed in self._changed.values():
            changed.set()
        self._changed.clear()
