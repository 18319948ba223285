"""Two `edgestack hub` processes on one PostgreSQL database and one data dir, with plain HTTP
devices sending telemetry to both: a desired-state change made on one replica reaches a
device long-polling the other, and a replica killed under load loses no batch it
acknowledged, while its controller's lease moves to the survivor, which steps rollouts and
fails the job the dead one ran."""

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from conftest import Postgres, free_port
from edgestack.bundle import Bundle, FeatureSpec, InputSpec
from edgestack.demo import wait_until
from edgestack.protocol import DesiredState, RolloutView, TelemetryBatch

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "replica-admin-token"
ENROL_TOKEN = "replica-enrol-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEVICES = [f"edge-{n}" for n in range(4)]
SPEC = InputSpec(
    sensors=["vib_x"],
    rate_hz=100,
    window=32,
    hop=32,
    extractors=[FeatureSpec(kind="time_stats")],
    features=["rms", "peak"],
)


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Fleet:
    replicas: list[Replica]
    database_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def holder_of(self, lease: str) -> int | None:
        """The process id of the replica holding `lease`, while one holds it unexpired."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                holder = connection.scalar(
                    text("SELECT holder FROM leases WHERE name = :name AND expires_at > :now"),
                    {"name": lease, "now": datetime.now(UTC).replace(tzinfo=None)},
                )
        finally:
            engine.dispose()
        return None if holder is None else int(holder.split("/")[1])

    def stored_batches(self) -> list[str]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return list(connection.scalars(text("SELECT batch_id FROM telemetry_batches")))
        finally:
            engine.dispose()


def _start(data_dir: Path, database_url: str, name: str) -> Replica:
    port = free_port()
    log = data_dir.parent / f"{name}.log"
    env = {
        **os.environ,
        "EDGESTACK_ADMIN_TOKEN": ADMIN_TOKEN,
        "EDGESTACK_ENROL_TOKEN": ENROL_TOKEN,
        "EDGESTACK_HUB_JOBS_WORKER": "false",
        "EDGESTACK_HUB_CONTROL_TICK_S": "0.2",
        "EDGESTACK_HUB_LEASE_S": "2",
    }
    args = ["hub", "--data-dir", str(data_dir), "--database-url", database_url]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgestack", *args, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    replica = Replica(proc, f"http://127.0.0.1:{port}", log)

    def up() -> bool:
        if not replica.alive():
            raise RuntimeError(f"replica {name} exited:\n{log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{replica.url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, timeout_s=60, what=f"replica {name} on {replica.url}")
    return replica


@pytest.fixture(scope="module")
def fleet(postgres_server: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Replicas a and b, started one after the other (the first migrates the database), and
    the devices enrolled, each through the replica its number picks."""
    database_url = postgres_server.database()
    data_dir = tmp_path_factory.mktemp("replicas") / "hub"
    replicas: list[Replica] = []
    try:
        for name in ("a", "b"):
            replicas.append(_start(data_dir, database_url, name))
        fleet = Fleet(replicas, database_url)
        for n, device_id in enumerate(DEVICES):
            body = {
                "device_id": device_id,
                "enrol_token": ENROL_TOKEN,
                "hardware": {"cores": 2, "ram_mb": 512, "arch": "x86_64", "providers": []},
            }
            enrolled = httpx.post(f"{replicas[n % 2].url}/api/v1/enrol", json=body, timeout=10)
            assert enrolled.status_code == 200, enrolled.text
            fleet.tokens[device_id] = enrolled.json()["device_token"]
        yield fleet
    finally:
        for replica in replicas:
            if replica.alive():
                replica.proc.send_signal(signal.SIGTERM)
        for replica in replicas:
            try:
                replica.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                replica.proc.kill()
                replica.proc.wait()


def _device(fleet: Fleet, device_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {fleet.tokens[device_id]}"}


def _last_seen(replica: Replica, device_id: str) -> str | None:
    view = httpx.get(f"{replica.url}/api/v1/devices/{device_id}", headers=ADMIN, timeout=10)
    last_seen: str | None = view.json()["last_seen"]
    return last_seen


def test_a_change_made_on_one_replica_reaches_a_device_long_polling_the_other(
    fleet: Fleet,
) -> None:
    a, b = fleet.replicas
    device = DEVICES[0]
    desired_url = f"/api/v1/devices/{device}/desired"
    with httpx.Client(base_url=b.url, headers=_device(fleet, device), timeout=90) as at_b:
        version = DesiredState.model_validate(at_b.get(desired_url).json()).version
        seen_before = _last_seen(b, device)
        with ThreadPoolExecutor(1) as pool:
            # Far longer than the bound on the answer below: only a notification is in time.
            polled = pool.submit(at_b.get, desired_url, params={"after": version, "wait": 60})
            # b reads the state in the transaction that marks the device seen: once that
            # moved, the poll holds the old state and waits.
            wait_until(
                lambda: _last_seen(b, device) != seen_before,
                timeout_s=15,
                what="the long-poll to reach b",
            )
            patched = httpx.patch(
                f"{a.url}{desired_url}", json={"telemetry_interval_s": 7}, headers=ADMIN
            )
            assert patched.status_code == 200, patched.text
            answer = polled.result(timeout=15)

    assert answer.status_code == 200, answer.text
    seen = DesiredState.model_validate(answer.json())
    assert (seen.version, seen.telemetry_interval_s) == (version + 1, 7)


class _Load:
    """Each device sends telemetry batches to the replicas in turn, and, when one fails to
    answer, the same batch (its id unchanged) to the other, as an agent sends again."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.acknowledged: list[str] = []
        self._threads = [
            threading.Thread(target=self._send, args=(device,), daemon=True) for device in DEVICES
        ]

    def __enter__(self) -> "_Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def _send(self, device: str) -> None:
        headers = {**_device(self._fleet, device), "Content-Type": "application/json"}
        urls = [f"{r.url}/api/v1/devices/{device}/telemetry" for r in self._fleet.replicas]
        at = datetime(2026, 1, 1, tzinfo=UTC)
        seq = 0
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                seq += 1
                batch = TelemetryBatch(
                    batch_id=uuid.uuid4(),
                    seq=seq,
                    start=at + timedelta(seconds=10 * (seq - 1)),
                    end=at + timedelta(seconds=10 * seq),
                    windows=10,
                    predictions={"normal": 10},
                    raw_bytes=4000,
                    uplink_bytes=400,
                )
                body = batch.model_dump_json()
                for attempt in range(20):
                    url = urls[(seq + attempt) % len(urls)]
                    try:
                        sent = http.post(url, content=body, headers=headers)
                    except httpx.TransportError:
                        continue
                    if sent.status_code == 200:
                        with self._lock:
                            self.acknowledged.append(str(batch.batch_id))
                        break
                    # Anything else is a hub fault this test is here to find.
                    raise AssertionError(f"{url} answered {sent.status_code}: {sent.text}")


def test_a_replica_killed_under_load_loses_no_acknowledged_batch_and_its_lease_moves(
    fleet: Fleet,
) -> None:
    controller = wait_until(
        lambda: fleet.holder_of("controller"), timeout_s=15, what="a replica to take the lease"
    )
    [holder] = [r for r in fleet.replicas if r.proc.pid == controller]
    [survivor] = [r for r in fleet.replicas if r is not holder]
    # No worker runs them: each replica's claim stands for its worker's.
    orphaned, kept = _claimed_on(holder), _claimed_on(survivor)
    with _Load(fleet) as load:
        wait_until(lambda: load.count() >= 40, timeout_s=60, what="batches before the kill")
        holder.proc.kill()
        holder.proc.wait()
        killed_at = load.count()
        wait_until(
            lambda: load.count() >= killed_at + 40,
            timeout_s=60,
            what="batches to the survivor after the kill",
        )
    taken_over = wait_until(
        lambda: fleet.holder_of("controller") == survivor.proc.pid,
        timeout_s=30,
        what="the survivor to take the controller's lease",
    )
    rollout = _rollout_on(survivor)
    stepped = wait_until(
        lambda: _rollout(survivor, rollout.id).state == "held",
        timeout_s=30,
        what="the survivor's controller to step the rollout",
    )
    failed = wait_until(
        lambda: _job(survivor, orphaned)["state"] == "failed",
        timeout_s=30,
        what="the job of the killed replica to fail",
    )

    stored = fleet.stored_batches()
    assert set(load.acknowledged) <= set(stored), "a batch a replica acknowledged was lost"
    assert len(stored) == len(set(stored)), "a batch sent again was stored twice"
    assert taken_over and stepped and failed
    assert _job(survivor, kept)["state"] == "running"


def _rollout_on(replica: Replica) -> RolloutView:
    """motor v1 on every device, v2 rolled out to them in one wave: a gate that lacks data,
    so the controller's first step holds it."""
    raw = {**ADMIN, "Content-Type": "application/octet-stream"}
    with httpx.Client(base_url=replica.url, headers=ADMIN, timeout=30) as hub:
        for version in (1, 2):
            bundle = Bundle.create(
                name="motor",
                version=version,
                labels=["normal", "worn"],
                input=SPEC,
                model=f"model v{version}".encode(),
            )
            registered = hub.post("/api/v1/models", content=bundle.pack(), headers=raw)
            assert registered.status_code == 201, registered.text
            if version == 1:
                body = {"model": "motor", "version": 1, "all": True, "force": True}
                deployed = hub.post("/api/v1/deployments", json=body)
                assert deployed.status_code == 200, deployed.text
        plan = {
            "model": "motor",
            "to": ["all"],
            "waves": [1.0],
            "shadow_s": 0,
            "gate": {"agreement": 0.9},
            "min_windows": 10,
            "force": True,
        }
        started = hub.post("/api/v1/rollouts", json=plan)
        assert started.status_code == 201, started.text
    return RolloutView.model_validate(started.json())


def _rollout(replica: Replica, rollout_id: int) -> RolloutView:
    got = httpx.get(f"{replica.url}/api/v1/rollouts/{rollout_id}", headers=ADMIN, timeout=10)
    return RolloutView.model_validate(got.json())


def _claimed_on(replica: Replica) -> int:
    """A job submitted and claimed through `replica`, as its worker claims one; its id."""
    with httpx.Client(base_url=replica.url, headers=ADMIN, timeout=30) as hub:
        body = {"job": {"kind": "train", "dataset": "motors", "model": "decision_tree"}}
        submitted = hub.post("/api/v1/jobs", json=body)
        assert submitted.status_code in (200, 201), submitted.text
        claimed = hub.post("/api/v1/jobs/claim")
        assert claimed.status_code == 200, claimed.text
    job_id: int = claimed.json()["id"]
    return job_id


def _job(replica: Replica, job_id: int) -> dict[str, object]:
    got = httpx.get(f"{replica.url}/api/v1/jobs/{job_id}", headers=ADMIN, timeout=10)
    job: dict[str, object] = got.json()
    return job
