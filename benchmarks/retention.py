"""Whether the hub's database stops growing under a steady fleet with retention on, and what
rolling a telemetry batch up costs against storing it.

A fleet of `DEVICES` devices each sends a telemetry batch and an event every `EVERY_MIN`
simulated minutes, for `DAYS` simulated days, into a hub database on a temporary directory
(the store's own functions, on a clock the benchmark moves, so days pass in seconds). The
hub's retention runs as its controller would, every `retention_every_s`, with ages of a day
or two, so the steady state comes within the run. At the end of each day the database file's
size is read after a WAL checkpoint.

`db_growth_bounded` is true when the file of the last day is no larger than that of the first
steady day (once the longest-lived rows, a telemetry batch's id, start to go) by more than
`TOLERANCE`: SQLite
reuses the pages removed rows leave, so a bounded set of rows keeps a file of a bounded size.
`rollup_vs_ingest` is the seconds retention spent per batch it rolled up (with the events and
ids it removed beside) over the seconds ingestion spent per batch it stored: the anchor,
measured in the same run.

    python benchmarks/retention.py   # a table, then one JSON line
"""

import json
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from edgestack.hub import HubSettings
from edgestack.hub import retention as hub_retention
from edgestack.hub.store import Database, batches, devices, events, telemetry
from edgestack.hub.store.db import sqlite_url
from edgestack.hub.store.tables import EventRow, ReceivedBatchRow, TelemetryRollupRow, TelemetryRow
from edgestack.protocol import (
    EnrolRequest,
    Event,
    EventBatch,
    Hardware,
    MonitorReport,
    TelemetryBatch,
)

DEVICES = 10
EVERY_MIN = 10
DAYS = 6
TOLERANCE = 0.05
SETTINGS = {
    "retain_telemetry_days": 1,
    "retain_rollups_days": 2,
    "retain_events_days": 1,
    "retain_batch_ids_days": 2,
    "retention_every_s": 6 * 3600,
}
# The longest a row lives is a telemetry batch's id: a day as a batch, then two as an id.
_STEADY_DAY = 4
_HARDWARE = Hardware(cores=4, ram_mb=2048, arch="aarch64", providers=["CPUExecutionProvider"])
_TABLES = (TelemetryRow, TelemetryRollupRow, EventRow, ReceivedBatchRow)


@dataclass
class Growth:
    """Per simulated day, the database file's bytes and each table's rows; and the seconds
    spent storing and retaining."""

    days: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    ingest_s: float = 0.0
    stored: int = 0
    retain_s: float = 0.0
    rolled_up: int = 0

    @property
    def bounded(self) -> bool:
        steady = self.days[_STEADY_DAY - 1][0]
        return all(size <= steady * (1 + TOLERANCE) for size, _ in self.days[_STEADY_DAY - 1 :])

    @property
    def rollup_vs_ingest(self) -> float:
        return (self.retain_s / max(self.rolled_up, 1)) / (self.ingest_s / max(self.stored, 1))


def measure(data_dir: Path, *, devices_n: int = DEVICES, days: int = DAYS) -> Growth:
    """Feed a steady fleet into a hub database in `data_dir` for `days` simulated days."""
    settings = HubSettings(data_dir=data_dir, **SETTINGS)
    db = Database(sqlite_url(data_dir / "hub.db"))
    clock = [datetime.now(UTC)]
    growth = Growth()
    ids = [f"motor-{i}" for i in range(devices_n)]
    with db.writer() as session:
        for device_id in ids:
            devices.enrol(
                session, EnrolRequest(device_id=device_id, enrol_token="t", hardware=_HARDWARE)
            )
        session.commit()
    # The store reads the hub's clock; here it is the simulation's.
    clocks = [
        mock.patch.object(module, "utcnow", lambda: clock[0])
        for module in (telemetry, events, batches)
    ]
    for patch in clocks:
        patch.start()
    try:
        steps = days * 24 * 60 // EVERY_MIN
        for step in range(1, steps + 1):
            start = time.perf_counter()
            with db.writer() as session:
                for device_id in ids:
                    telemetry.ingest(session, device_id, _batch(step, clock[0]))
                    events.ingest(session, device_id, _event(clock[0]))
                session.commit()
            growth.ingest_s += time.perf_counter() - start
            growth.stored += len(ids)
            clock[0] += timedelta(minutes=EVERY_MIN)
            before = _rows(db)[TelemetryRow.__tablename__]
            start = time.perf_counter()
            hub_retention.run_if_due(db, settings, clock[0])
            growth.retain_s += time.perf_counter() - start
            growth.rolled_up += before - _rows(db)[TelemetryRow.__tablename__]
            if step % (24 * 60 // EVERY_MIN) == 0:
                growth.days.append((_size(db, data_dir), _rows(db)))
    finally:
        for patch in clocks:
            patch.stop()
        db.close()
    return growth


def _batch(seq: int, end: datetime) -> TelemetryBatch:
    return TelemetryBatch(
        batch_id=uuid.uuid4(),
        seq=seq,
        start=end - timedelta(minutes=EVERY_MIN),
        end=end,
        windows=600,
        predictions={"normal": 590, "worn": 10},
        raw_bytes=4_000_000,
        uplink_bytes=2_000,
        bundle_digest="ab" * 32,
        latency_ms_p50=1.0,
        latency_ms_p95=2.0,
        monitoring=MonitorReport(confidence=[0, 0, 0, 0, 0, 10, 20, 70, 200, 300]),
    )


def _event(at: datetime) -> EventBatch:
    event = Event(
        event_id=uuid.uuid4(), at=at, kind="alarm_raised", severity="warning", message="worn"
    )
    return EventBatch(batch_id=uuid.uuid4(), events=[event])


def _rows(db: Database) -> dict[str, int]:
    with db.session() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in _TABLES
        }


def _size(db: Database, data_dir: Path) -> int:
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return (data_dir / "hub.db").stat().st_size


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        growth = measure(Path(folder))
    table = Table(title=f"{DEVICES} devices, a batch and an event each every {EVERY_MIN} min")
    table.add_column("day", justify="right")
    table.add_column("file MiB", justify="right")
    for name in (t.__tablename__ for t in _TABLES):
        table.add_column(name, justify="right")
    for day, (size, rows) in enumerate(growth.days, start=1):
        table.add_row(str(day), f"{size / 2**20:.2f}", *(str(n) for n in rows.values()))
    console = Console()
    console.print(table)
    console.print(
        f"retention per batch rolled up / ingestion per batch stored: {growth.rollup_vs_ingest:.2f}"
    )
    print(
        json.dumps(
            {
                "db_growth_bounded": growth.bounded,
                "db_bytes_last_day": growth.days[-1][0],
                "rollup_vs_ingest": round(growth.rollup_vs_ingest, 3),
                "devices": DEVICES,
                "days": DAYS,
            }
        )
    )


if __name__ == "__main__":
    main()
