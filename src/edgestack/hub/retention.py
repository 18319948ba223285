"""Retention runs: every `retention_every_s` the controller rolls up and removes what is past
its age (`store.retention`), a few thousand rows per short write transaction and a slice of
each tick, and says what each run did in a `retention_run` event; `edgestack hub retain` runs
it at once.

When it last finished a run, and what the run under way removed, are kept in the database,
so a hub started again, or another replica, goes on where it stopped.
"""

import os
import time
from datetime import datetime, timedelta

from edgestack.hub import datadir
from edgestack.hub.settings import HubSettings
from edgestack.hub.store import Database, events, retention, utcnow

__all__ = ["SLICE_S", "retain", "run", "run_if_due"]

SLICE_S = 2.0
"""About how long one controller tick spends on retention: a run over a large fleet's hour
of telemetry goes on over many ticks, and rollouts keep their pace meanwhile."""


def run(
    db: Database,
    settings: HubSettings,
    now: datetime | None = None,
    *,
    slice_s: float | None = None,
) -> dict[str, int] | None:
    """Roll up and remove, as of `now`, what `settings` keeps no longer; the rows the run
    removed by table (telemetry batches were rolled up first).

    Given `slice_s`, it stops once that many seconds have passed and a table has rows left,
    and returns None: the next call goes on with the same run. A table it finishes does not
    stop it, so each call gets at least one table further or removes a full batch of rows."""
    now = now or utcnow()
    deadline = None if slice_s is None else time.monotonic() + slice_s
    steps: dict[str, tuple[retention.Step, float]] = {
        "telemetry_batches": (retention.roll_up, settings.retain_telemetry_days),
        "telemetry_rollups": (retention.remove_rollups, settings.retain_rollups_days),
        "events": (retention.remove_events, settings.retain_events_days),
        "review_windows": (retention.remove_windows, settings.retain_windows_days),
        "received_batches": (retention.remove_batch_ids, settings.retain_batch_ids_days),
    }
    for name in retention.TABLES:
        step, days = steps[name]
        before = now - timedelta(days=days)
        while True:
            with db.writer() as session:
                done = step(session, before, settings.retention_batch_rows)
                retention.count(session, name, done, now)
                session.commit()
            if done < settings.retention_batch_rows:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return None
    with db.writer() as session:
        removed = retention.finish(session, now)
        if any(removed.values()):
            events.record(session, "retention_run", _said(removed), severity="info")
        session.commit()
    return removed


def run_if_due(
    db: Database, settings: HubSettings, now: datetime | None = None, *, slice_s: float = SLICE_S
) -> bool:
    """Run retention, `slice_s` at a time, when it is on and `retention_every_s` has passed
    since it last finished a run; whether it finished one.

    On a database it never ran on, this only starts the clock: a hub upgraded from a release
    that kept everything gives its operator one interval to set the ages before old rows go.
    """
    now = now or utcnow()
    if not settings.retention:
        return False
    with db.session() as session:
        last = retention.last_run(session)
    if last is None:
        with db.writer() as session:
            retention.finish(session, now)
            session.commit()
        return False
    if now - last < timedelta(seconds=settings.retention_every_s):
        return False
    return run(db, settings, now, slice_s=slice_s) is not None


def retain(settings: HubSettings) -> dict[str, int]:
    """Run retention now on the hub's database (`settings.database_url`, else the SQLite file
    in `settings.data_dir`, while no hub runs on it); the rows it removed, with those of a run
    a hub left under way."""
    url = datadir.database_url(settings.data_dir, settings.database_url)
    holder = f"edgestack hub retain (process {os.getpid()})"
    with datadir.hold(settings.data_dir, holder, alone=not datadir.shared(url)):
        db = Database(url)
        try:
            removed = run(db, settings)
        finally:
            db.close()
    assert removed is not None, "a run without a slice finishes"
    return removed


def _said(removed: dict[str, int]) -> str:
    """The event's message: what a run rolled up and removed, e.g. `retention: rolled up 12
    telemetry batches by device and hour; removed 3 events`."""
    parts = []
    if rolled := removed["telemetry_batches"]:
        parts.append(f"rolled up {rolled} telemetry batches by device and hour")
    others = [f"{n} {name}" for name, n in removed.items() if n and name != "telemetry_batches"]
    if others:
        parts.append("removed " + ", ".join(others))
    return "retention: " + "; ".join(parts)
