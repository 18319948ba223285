"""Retention runs: every `retention_every_s` the controller rolls up and removes what is past
its age (`store.retention`), a few thousand rows per short write transaction, and says what
it did in a `retention_run` event; `edgestack hub retain` runs it at once.

When it last ran is kept in the database, so a hub started again, or another replica, keeps
the pace rather than starting over.
"""

import os
from datetime import datetime, timedelta

from edgestack.hub import datadir
from edgestack.hub.settings import HubSettings
from edgestack.hub.store import Database, events, retention, utcnow

__all__ = ["retain", "run", "run_if_due"]


def run(db: Database, settings: HubSettings, now: datetime | None = None) -> dict[str, int]:
    """Roll up and remove, as of `now`, what `settings` keeps no longer; the rows removed by
    table (telemetry batches were rolled up first)."""
    now = now or utcnow()
    steps: dict[str, tuple[retention.Step, float]] = {
        "telemetry_batches": (retention.roll_up, settings.retain_telemetry_days),
        "telemetry_rollups": (retention.remove_rollups, settings.retain_rollups_days),
        "events": (retention.remove_events, settings.retain_events_days),
        "review_windows": (retention.remove_windows, settings.retain_windows_days),
        "received_batches": (retention.remove_batch_ids, settings.retain_batch_ids_days),
    }
    removed: dict[str, int] = {}
    for name in retention.TABLES:
        step, days = steps[name]
        before = now - timedelta(days=days)
        removed[name] = 0
        while True:
            with db.writer() as session:
                done = step(session, before, settings.retention_batch_rows)
                retention.count(session, name, done, now)
                session.commit()
            removed[name] += done
            if done < settings.retention_batch_rows:
                break
    if any(removed.values()):
        with db.writer() as session:
            events.record(session, "retention_run", _said(removed), severity="info")
            session.commit()
    return removed


def run_if_due(db: Database, settings: HubSettings, now: datetime | None = None) -> bool:
    """Run retention when it is on and `retention_every_s` has passed since it last ran;
    whether it ran.

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
            for name in retention.TABLES:
                retention.count(session, name, 0, now)
            session.commit()
        return False
    if now - last < timedelta(seconds=settings.retention_every_s):
        return False
    run(db, settings, now)
    return True


def retain(settings: HubSettings) -> dict[str, int]:
    """Run retention now on the database in `settings.data_dir` while no hub runs on it."""
    with datadir.hold(settings.data_dir, f"edgestack hub retain (process {os.getpid()})"):
        db = Database(settings.data_dir / datadir.DATABASE)
        try:
            return run(db, settings)
        finally:
            db.close()


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
