"""A hub process on a data dir an older release made, and two hubs on one data dir."""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from edgestack.bundle import Bundle, BundleStore, FeatureSpec, InputSpec, digest
from edgestack.dataset import read_dataset, write_dataset
from edgestack.demo import LocalFleet
from edgestack.hub.store import schema
from edgestack.protocol import (
    DesiredState,
    Event,
    EventBatch,
    Hardware,
    SampleCounts,
    TelemetryTotals,
)

pytestmark = pytest.mark.integration

SPEC = InputSpec(
    sensors=["vib_x"],
    rate_hz=100,
    window=32,
    hop=32,
    extractors=[FeatureSpec(kind="time_stats")],
    features=["rms", "peak"],
)
TOKEN = "token-of-the-old-release"
AT = datetime(2025, 3, 1, 12, tzinfo=UTC)


def edgestack(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgestack", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "500", **env},
    )


def _stamp(at: datetime) -> str:
    # How SQLAlchemy stores a UTC time in SQLite: naive, with microseconds.
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _alarm(message: str) -> Event:
    return Event(
        event_id=uuid.uuid4(), at=AT, kind="alarm_raised", severity="warning", message=message
    )


def released_data_dir(data_dir: Path) -> bytes:
    """A data dir as the release before schema revisions left it: the first revision's tables,
    no `alembic_version`, and a device, samples, events, a model and a dataset version in it.
    Returns the model's packed bundle."""
    engine = create_engine(f"sqlite:///{data_dir / 'hub.db'}")
    data_dir.mkdir(parents=True)
    schema.upgrade(engine, to=schema.FIRST_REVISION)
    engine.dispose()
    bundle = Bundle.create(
        name="motor", version=1, labels=["normal", "worn"], input=SPEC, model=b"onnx-model"
    ).pack()
    BundleStore(data_dir / "artifacts").put(bundle)
    fingerprint = SPEC.fingerprint()
    samples = [
        ("old-1", AT + timedelta(seconds=i), "worn", "train", [i, 2.0 * i]) for i in range(3)
    ]
    write_dataset(data_dir / "datasets" / "default" / "v1.parquet", SPEC, fingerprint, samples)
    counts = SampleCounts(total=3, labels={"worn": 3}, devices={"old-1": 3}, splits={"train": 3})
    events = [_alarm(f"worn for {n} windows") for n in (4, 5)]
    with sqlite3.connect(data_dir / "hub.db") as db:
        db.execute("DROP TABLE alembic_version")
        db.execute(
            "INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?)",
            (
                "old-1",
                hashlib.sha256(TOKEN.encode()).hexdigest(),
                _stamp(AT),
                _stamp(AT),
                Hardware(cores=2, ram_mb=512, arch="armv7l", providers=[]).model_dump_json(),
                DesiredState().model_dump_json(exclude={"version"}),
                TelemetryTotals().model_dump_json(),
            ),
        )
        db.executemany(
            "INSERT INTO events (device_id, batch_id, received_at, event) VALUES (?, ?, ?, ?)",
            [("old-1", str(uuid.uuid4()), _stamp(AT), e.model_dump_json()) for e in events],
        )
        db.execute("INSERT INTO specs VALUES (?, ?)", (fingerprint, SPEC.model_dump_json()))
        db.executemany(
            "INSERT INTO samples (device_id, batch_id, dataset, spec, label, split, at, features)"
            " VALUES (?, ?, 'default', ?, ?, ?, ?, ?)",
            [
                (device, str(uuid.uuid4()), fingerprint, label, split, _stamp(at), json.dumps(f))
                for device, at, label, split, f in samples
            ],
        )
        db.execute(
            "INSERT INTO dataset_versions (dataset, version, spec, last_sample_id, frozen_at,"
            " counts, file) VALUES ('default', 1, ?, 3, ?, ?, 'default/v1.parquet')",
            (fingerprint, _stamp(AT), counts.model_dump_json()),
        )
        db.execute(
            "INSERT INTO models (name, version, digest, size_bytes, manifest, registered_at)"
            " VALUES ('motor', 1, ?, ?, ?, ?)",
            (
                digest(bundle),
                len(bundle),
                Bundle.unpack(bundle).manifest.model_dump_json(),
                _stamp(AT),
            ),
        )
    return bundle


def test_todays_hub_upgrades_a_data_dir_of_the_release_before_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    bundle = released_data_dir(tmp_path / "hub")

    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        devices = fleet.client.devices()
        models = fleet.client.models()
        stored_bundle = fleet.client.bundle(models[0].digest)
        events = fleet.client.events()
        samples = fleet.client.samples()
        version = read_dataset(fleet.client.dataset_parquet("default", 1))
        listed = edgestack(
            "data",
            "list",
            "--json",
            "--hub",
            fleet.hub_url,
            EDGESTACK_ADMIN_TOKEN=fleet.admin_token,
        )
        # The device of the older release still gets through, so its agent stops buffering.
        sent = httpx.post(
            f"{fleet.hub_url}/v1/devices/old-1/events",
            content=EventBatch(batch_id=uuid.uuid4(), events=[_alarm("back")]).model_dump_json(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
    log = (tmp_path / "hub.log").read_text()

    assert [d.device_id for d in devices] == ["old-1"]
    assert [(m.name, m.version) for m in models] == [("motor", 1)]
    assert stored_bundle == bundle
    assert [(e.device_id, e.event.message) for e in events] == [
        ("old-1", "worn for 4 windows"),
        ("old-1", "worn for 5 windows"),
    ]
    assert [s.features for s in samples.samples] == [[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]]
    assert len(version.labels) == 3
    assert listed.returncode == 0, listed.stdout + listed.stderr
    (default,) = json.loads(listed.stdout)
    assert (default["name"], default["counts"]["total"], default["versions"]) == ("default", 3, 1)
    assert sent.status_code == 200, sent.text
    assert sent.json()["accepted"] == 1
    assert f"(made before schema revisions were kept) upgraded to {schema.head()}" in log


def test_a_second_hub_on_the_same_data_dir_is_refused_until_the_first_dies(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "hub"

    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        (first,) = fleet.pids
        second = edgestack("hub", "--data-dir", str(data_dir), "--port", "0")
        migrating = edgestack("hub", "migrate", "--data-dir", str(data_dir))
        os.kill(first, signal.SIGKILL)
        fleet.stop_hub()
        fleet.start_hub()
        after_kill = fleet.client.healthy()

    assert second.returncode == 1
    assert f"data dir {data_dir} is held by the hub of process {first}" in second.stdout
    assert migrating.returncode == 1
    assert f"process {first}" in migrating.stdout
    assert after_kill


def test_migrate_upgrades_a_data_dir_of_the_release_before_and_says_how(tmp_path: Path) -> None:
    released_data_dir(tmp_path / "hub")

    first = edgestack("hub", "migrate", "--data-dir", str(tmp_path / "hub"))
    again = edgestack("hub", "migrate", "--data-dir", str(tmp_path / "hub"))

    assert first.returncode == 0, first.stdout + first.stderr
    assert (
        f"schema revision {schema.FIRST_REVISION} (made before schema revisions were kept) "
        f"upgraded to {schema.head()}"
    ) in first.stdout
    assert again.returncode == 0
    assert f"schema revision {schema.head()} already; nothing to do" in again.stdout
