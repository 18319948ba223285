"""Wakes long-polls when a device's desired state changes: in this hub process, and, where
several hub replicas share a PostgreSQL database, in the others through LISTEN/NOTIFY."""

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator

from sqlalchemy import Engine, func, select

__all__ = ["CHANNEL", "DesiredChannel", "DesiredNotifier"]

log = logging.getLogger("edgestack.hub.notify")

CHANNEL = "edgestack_desired"
"""The PostgreSQL channel that carries the ids of devices whose desired state changed."""

# PostgreSQL refuses a payload of 8000 bytes or more; ids are at most 63 ASCII characters,
# and the sender's name about 100.
_PAYLOAD_BYTES = 7000
_RETRY_S = (0.5, 1.0, 2.0, 5.0)


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

    def notify_all(self) -> None:
        """Wake every long-poll to read its state again: changes may have gone unheard."""
        self._on_loop(self._wake_all)

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
        self._wake_all()

    def _wake_all(self) -> None:
        for changed in self._changed.values():
            changed.set()
        self._changed.clear()


class DesiredChannel:
    """Desired-state changes between hub replicas on one PostgreSQL database.

    `send` tells every other replica listening which devices changed, after their change
    committed; `listen` hears them for as long as it runs and wakes the long-polls `notifier`
    holds for them. Each payload is `sender` and the ids, space-separated, so a replica skips
    its own (it woke its long-polls already). Each time it begins to listen (again, after its
    connection was lost) it wakes every long-poll, since what was sent before went unheard.
    """

    def __init__(self, engine: Engine, notifier: DesiredNotifier, sender: str) -> None:
        self._engine = engine
        self._notifier = notifier
        self._sender = sender.replace(" ", "_")
        # psycopg's own connection string: the URL without SQLAlchemy's driver name.
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )

    def send(self, device_ids: Iterable[str]) -> None:
        """Tell every replica that `device_ids` changed; blocks on the database, so call it
        from a worker thread."""
        payloads = list(_payloads(self._sender, device_ids))
        if not payloads:
            return
        with self._engine.begin() as connection:
            for payload in payloads:
                connection.execute(select(func.pg_notify(CHANNEL, payload)))

    async def listen(self) -> None:
        """Hear changes until cancelled, connecting again whenever the connection is lost."""
        import psycopg

        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    # Long-polls that began before this could hear nothing read their state
                    # again: a change may have come in between.
                    self._notifier.notify_all()
                    if failures:
                        log.info("hearing other replicas' desired-state changes again")
                    failures = 0
                    async for heard in connection.notifies():
                        sender, *device_ids = heard.payload.split()
                        if sender != self._sender:
                            for device_id in device_ids:
                                self._notifier.notify(device_id)
            # Not only psycopg's errors: a listener that ends for good would leave this
            # replica's long-polls deaf to the others until it restarts.
            except Exception as exc:
                wait_s = _RETRY_S[min(failures, len(_RETRY_S) - 1)]
                failures += 1
                log.warning(
                    "lost the channel of other replicas' desired-state changes (%s); "
                    "connecting again in %.1f s",
                    exc,
                    wait_s,
                )
                await asyncio.sleep(wait_s)


def _payloads(sender: str, device_ids: Iterable[str]) -> Iterator[str]:
    """`device_ids` as few payloads as PostgreSQL accepts, each `sender` and ids, spaced."""
    batch: list[str] = []
    size = len(sender)
    for device_id in dict.fromkeys(device_ids):
        if batch and size + len(device_id) + 1 > _PAYLOAD_BYTES:
            yield " ".join([sender, *batch])
            batch, size = [], len(sender)
        batch.append(device_id)
        size += len(device_id) + 1
    if batch:
        yield " ".join([sender, *batch])
