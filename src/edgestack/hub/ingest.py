"""Group commit for telemetry: batches of many requests stored in one transaction.

One SQLite file takes one writer at a time. A transaction per request spends most of its
time beginning, committing and handing the write lock from thread to thread; one thread
that takes whatever batches have queued up while it was busy and stores them together pays
that once for all of them. Each request is still answered only once its batch is committed.
"""

import asyncio
import concurrent.futures
import logging
import queue
import threading
from dataclasses import dataclass

from edgestack.hub.store import Database, telemetry
from edgestack.protocol import IngestAck, TelemetryBatch

__all__ = ["GroupCommit"]

log = logging.getLogger("edgestack.hub")

# The most batches in one transaction: enough for a fleet's burst, few enough that a
# transaction stays short for the other writers waiting on the file.
_MOST = 64


@dataclass(frozen=True)
class _Batch:
    device_id: str
    batch: TelemetryBatch
    answer: "concurrent.futures.Future[IngestAck]"


class GroupCommit:
    """Stores telemetry batches on a thread of its own, as many per transaction as have
    queued up; `close` stores what is queued, then stops the thread."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="telemetry-writer", daemon=True)
        self._thread.start()

    async def ingest(self, device_id: str, batch: TelemetryBatch) -> IngestAck:
        """Store `batch` of `device_id` as `telemetry.ingest` does, once it is committed."""
        if self._closed:
            raise RuntimeError("the hub is stopping; the batch was not stored")
        answer: concurrent.futures.Future[IngestAck] = concurrent.futures.Future()
        self._queue.put(_Batch(device_id, batch, answer))
        return await asyncio.wrap_future(answer)

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            group = [first]
            while len(group) < _MOST:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    self._store(group)
                    return
                group.append(following)
            self._store(group)

    def _store(self, group: list[_Batch]) -> None:
        # A request given up on (its client left) is not stored: it was never acked.
        waiting = [item for item in group if item.answer.set_running_or_notify_cancel()]
        if waiting:
            self._commit(waiting)

    def _commit(self, group: list[_Batch]) -> None:
        try:
            with self._db.writer() as session:
                acks = telemetry.ingest_many(
                    session, [(item.device_id, item.batch) for item in group]
                )
                session.commit()
        except Exception as exc:
            if len(group) == 1:
                group[0].answer.set_exception(exc)
                return
            # One batch failing must not fail the others: each on its own, to learn which.
            log.debug("a group of %d batches failed (%r); storing each alone", len(group), exc)
            for item in group:
                self._commit([item])
            return
        for item, ack in zip(group, acks, strict=True):
            item.answer.set_result(ack)
