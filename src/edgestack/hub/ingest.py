"""Group commit for devices' frequent writes: those of many requests in one transaction.

One SQLite file takes one writer at a time. A transaction per request spends most of its
time beginning, committing and handing the write lock from thread to thread; one thread
that takes whatever writes have queued up while it was busy and stores them together pays
that once for all of them. Each request is still answered only once its write is committed.
Reads every device call makes (its token, where replicas share a database and none is
remembered) are grouped the same way, in read-only transactions: one statement and round
trip for many calls.
"""

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from edgestack.hub.store import Database

__all__ = ["GroupCommit", "StoreMany"]

log = logging.getLogger("edgestack.hub")

# The most writes in one transaction: enough for a fleet's burst, few enough that a
# transaction stays short for the other writers waiting on the file.
_MOST = 64

T = TypeVar("T")
R = TypeVar("R")

StoreMany = Callable[[Session, Sequence[T]], list[R]]
"""Stores items in the caller's transaction, in order, as storing each alone would; the
result of each. It raises for the whole group when one fails: each is then tried alone."""


@dataclass(frozen=True)
class _Write:
    store: StoreMany[Any, Any]
    item: object
    answer: "concurrent.futures.Future[Any]"


class GroupCommit:
    """Stores items on a thread of its own, as many per transaction as have queued up, each
    kind through one call of its `StoreMany`; `close` stores what is queued, then stops.
    With `reads`, the calls only read, each group in a reader's transaction."""

    def __init__(self, db: Database, *, reads: bool = False) -> None:
        self._db = db
        self._reads = reads
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._closed = False
        name = "group-reader" if reads else "group-writer"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def store(self, store: StoreMany[T, R], item: T) -> R:
        """`store([item])`'s result, once it is committed with the writes queued beside it."""
        if self._closed:
            raise RuntimeError("the hub is stopping; nothing was stored")
        answer: concurrent.futures.Future[R] = concurrent.futures.Future()
        self._queue.put(_Write(store, item, answer))
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

    def _store(self, group: list[_Write]) -> None:
        # A request given up on (its client left) is not stored: it was never answered.
        waiting = [write for write in group if write.answer.set_running_or_notify_cancel()]
        if waiting:
            self._commit(waiting)

    def _commit(self, group: list[_Write]) -> None:
        kinds: dict[StoreMany[Any, Any], list[_Write]] = {}
        for write in group:
            kinds.setdefault(write.store, []).append(write)
        try:
            with self._db.session() if self._reads else self._db.writer() as session:
                results = {
                    store: store(session, [write.item for write in writes])
                    for store, writes in kinds.items()
                }
                session.commit()
        except Exception as exc:
            if len(group) == 1:
                group[0].answer.set_exception(exc)
                return
            # One write failing must not fail the others: each on its own, to learn which.
            log.debug("a group of %d writes failed (%r); storing each alone", len(group), exc)
            for write in group:
                self._commit([write])
            return
        for store, writes in kinds.items():
            for write, result in zip(writes, results[store], strict=True):
                write.answer.set_result(result)
