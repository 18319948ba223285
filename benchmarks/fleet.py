"""How many devices one hub carries: a simulated fleet against a real hub, on this machine.

The hub runs as `edgestack hub` in a process of its own, on its own data directory; the
devices are `edgestack.fleetsim` devices in processes of their own, speaking the protocol as
agents do (enrol, twin long-poll, reported state, gzipped telemetry batches with batch ids,
events now and then). A report is one device's telemetry batch.

- `devices`: devices enrolled and reporting every `--interval` seconds for `--steady` seconds
  once all are up (or `--up-within` seconds have passed: then those up); `lost`: batches
  the hub acknowledged that its database does not hold, by batch id (goal 0; a batch whose
  answer timed out may be stored, and is acked as a duplicate when sent again); `ingest_p99_ms`: a
  report's round trip, 99th percentile (goal <= 500).
- `twin_p99_s`: a deployment to every device, from the call until each device has fetched
  the bundle and reported its new desired version, 99th percentile (goal <= 5).
- `reports_per_s_http`: the most reports a second the hub stores on SQLite, with
  `--peak-devices` devices sending as fast as they are answered (goal >= 5000).
- `anchor_reports_per_s`: the same load against a bare HTTP endpoint in one process that
  parses each batch and stores nothing: what the machine, the simulator and HTTP allow.
  `http_vs_anchor` is the hub's peak against it.
- `hub_cpu_ms_per_report`: the hub process's CPU time per report at its peak, which other
  work on the machine changes less than it changes rates.
- `reports_per_s_postgres`: the same peak against a hub on a PostgreSQL server the benchmark
  starts on loopback (goal >= 5000).
- `reports_per_s_mqtt`: the same peak through a Mosquitto with the hub's accounts and ACL, each
  device publishing under its own account: the batches stored over the time from the devices'
  start until the hub held every batch the broker acked (goal >= 20000); `lost_mqtt`: batches
  the broker acked that the hub never stored.
- `db_growth_bounded`: whether the database stops growing under a steady fleet with retention
  on, as `retention.py` beside this file measures it.
- A measure whose server is not installed here is null, the install command in the table.

    python benchmarks/fleet.py [--devices 10000] [--steady 60]   # a table, then one JSON line
"""

import argparse
import gzip
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import retention
import uvicorn
from fastapi import FastAPI, Request
from rich.console import Console
from rich.table import Table

from edgestack.bundle import Bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.demo.services import HubBroker, Postgres, find_mosquitto, postgres_bindir
from edgestack.fleetsim import SimOptions, SimProgress, SimSummary, simulate
from edgestack.learning import train_classifier
from edgestack.processing import vibration_spec
from edgestack.protocol import (
    DeployRequest,
    DesiredState,
    EnrolRequest,
    EnrolResponse,
    EventBatch,
    IngestAck,
    ReportedState,
    TelemetryBatch,
)

_HUB_BROKER_PASSWORD = "fleet-bench-broker"
# Seconds without a new batch stored after which the hub is taken to have stored all it will.
_DRAIN_IDLE_S = 10.0


def main() -> None:
    args = _arguments()
    root = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    with LocalFleet(root, []) as fleet:
        fleet.start_hub(env=_enrol_env(args))
        steady, twin = _steady(fleet, args)
        stored = _stored(root / "hub" / "hub.db", args.prefix)
        hub_pid = fleet.pids[0]
        cpu_before = _cpu_s(hub_pid)
        peak = simulate(_peak_options(args, fleet.hub_url, fleet.enrol_token, root, "peak-"))
        cpu_ms = 1000 * (_cpu_s(hub_pid) - cpu_before) / max(1, peak.reports_acked)
    anchor = _anchor(args, root)
    postgres = _peak_on_postgres(args, root)
    mqtt = _peak_over_mqtt(args, root)
    with tempfile.TemporaryDirectory() as folder:
        growth = retention.measure(Path(folder))
    _report(args, steady, stored, twin, peak, anchor, cpu_ms, postgres, mqtt, growth)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--steady", type=float, default=60.0, help="seconds once all are up")
    parser.add_argument(
        "--up-within", type=float, default=600.0, help="seconds the devices have to come up"
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--peak-devices", type=int, default=400)
    parser.add_argument("--peak-seconds", type=float, default=20.0)
    parser.add_argument("--prefix", default="sim-")
    return parser.parse_args()


def _enrol_env(args: argparse.Namespace) -> dict[str, str]:
    return {"EDGESTACK_HUB_ENROL_ATTEMPTS": str(10 * args.devices)}


def _peak_on_postgres(args: argparse.Namespace, root: Path) -> SimSummary | str:
    """The peak against a hub on a PostgreSQL server of its own; why not, where none is here."""
    bindir = postgres_bindir()
    if bindir is None:
        return "no PostgreSQL server here: apt-get install -y postgresql"
    # Not under `root`, which only its owner may enter: the server may run as another user.
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-pg-"))
    server = Postgres(bindir, workdir)
    server.start()
    try:
        env = {**_enrol_env(args), "EDGESTACK_HUB_DATABASE_URL": server.database()}
        with LocalFleet(root / "postgres", []) as fleet:
            fleet.start_hub(env=env, timeout_s=120)
            return simulate(_peak_options(args, fleet.hub_url, fleet.enrol_token, root, "pg-"))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class _MqttPeak:
    reports_per_s: float
    acked: int
    lost: int
    failed: int


def _peak_over_mqtt(args: argparse.Namespace, root: Path) -> _MqttPeak | str:
    """The peak through a broker: the broker's acknowledgement is all a device hears, so the
    rate counts what the hub stored until it held every batch acked (or stopped storing)."""
    binary = find_mosquitto()
    if binary is None:
        return "no Mosquitto broker here: apt-get install -y mosquitto"
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-mqtt-"))
    workdir.chmod(0o755)
    broker = HubBroker(binary, workdir, _HUB_BROKER_PASSWORD)
    broker.start()
    try:
        with LocalFleet(workdir / "fleet", []) as fleet:
            fleet.start_hub(env={**_enrol_env(args), **broker.hub_env})
            options = _peak_options(args, fleet.hub_url, fleet.enrol_token, root, "mqtt-")
            peak = simulate(options.model_copy(update={"transport": broker.url}))
            ended = time.monotonic()
            acked = set(peak.acked_batches)
            stored = _drained(workdir / "fleet" / "hub" / "hub.db", "mqtt-", acked)
            drain_s = time.monotonic() - ended
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return _MqttPeak(
        reports_per_s=round(len(stored) / (peak.duration_s + drain_s), 1),
        acked=len(acked),
        lost=len(acked - stored),
        failed=peak.reports_failed,
    )


def _drained(database: Path, prefix: str, acked: set[str]) -> set[str]:
    """The batches stored once every one of `acked` is, or once none came for a while."""
    stored, still_since = _stored(database, prefix), time.monotonic()
    while not acked <= stored and time.monotonic() - still_since < _DRAIN_IDLE_S:
        time.sleep(0.2)
        now = _stored(database, prefix)
        if len(now) > len(stored):
            still_since = time.monotonic()
        stored = now
    return stored


def _steady(fleet: LocalFleet, args: argparse.Namespace) -> tuple[SimSummary, list[float]]:
    """The fleet reporting for `--steady` seconds once every device is up, a deployment to
    every device in its middle; the summary and each device's time to follow the deployment."""
    fleet.client.register_model(_bundle().pack())
    options = SimOptions(
        hub=fleet.hub_url,
        devices=args.devices,
        enrol_token=fleet.enrol_token,
        interval_s=args.interval,
        processes=args.processes,
        prefix=args.prefix,
        state_file=fleet.root / "tokens.json",
        connections=256,
    )
    up = threading.Event()
    stop = threading.Event()
    result: list[SimSummary] = []
    shown = [0.0]

    def progress(now: SimProgress) -> None:
        if now.devices_up == now.devices:
            up.set()
        if time.monotonic() - shown[0] > 10:
            shown[0] = time.monotonic()
            print(f"{now.devices_up}/{now.devices} devices up", file=sys.stderr, flush=True)

    runner = threading.Thread(target=lambda: result.append(simulate(options, progress, stop)))
    runner.start()
    try:
        # The fleet is measured as far as it came up in `--up-within` seconds: `devices`
        # says how far that was.
        up.wait(timeout=args.up_within)
        time.sleep(args.steady / 2)
        deployed = time.time()
        fleet.client.deploy(DeployRequest(model="fleet", all=True, force=True))
        time.sleep(args.steady / 2)
    finally:
        stop.set()
        runner.join()
    return result[0], [at - deployed for at in result[0].desired_seen_at]


def _peak_options(
    args: argparse.Namespace, hub: str, token: str, root: Path, prefix: str
) -> SimOptions:
    # Each device sends its next batch as soon as the last is answered: the hub sets the pace.
    return SimOptions(
        hub=hub,
        devices=args.peak_devices,
        enrol_token=token,
        interval_s=1e-3,
        duration_s=args.peak_seconds,
        processes=args.processes,
        prefix=prefix,
        poll_s=60,
        event_share=0,
        connections=args.peak_devices,
        state_file=root / f"{prefix}tokens.json",
    )


def _anchor(args: argparse.Namespace, root: Path) -> SimSummary:
    """The peak load against `_bare_hub` in a process of its own."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--bare-hub", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), timeout_s=60, what="the bare endpoint")
        return simulate(_peak_options(args, url, "anchor", root, "anchor-"))
    finally:
        server.terminate()
        server.wait(timeout=10)


def _bare_hub(port: int) -> None:
    """Enrols anyone, wants nothing, parses each batch and stores none of them."""
    app = FastAPI()
    batches = {"telemetry": TelemetryBatch, "events": EventBatch}

    @app.post("/api/v1/enrol")
    async def enrol(request: Request) -> EnrolResponse:
        asked = EnrolRequest.model_validate_json(await request.body())
        return EnrolResponse(device_id=asked.device_id, device_token=asked.device_id)

    @app.get("/api/v1/devices/{device_id}/desired")
    async def desired(device_id: str) -> DesiredState:
        return DesiredState()

    @app.put("/api/v1/devices/{device_id}/reported")
    async def reported(device_id: str, request: Request) -> None:
        ReportedState.model_validate_json(await request.body())

    @app.post("/api/v1/devices/{device_id}/{kind}")
    async def ingest(device_id: str, kind: str, request: Request) -> IngestAck:
        batch = batches[kind].model_validate_json(gzip.decompress(await request.body()))
        return IngestAck(batch_id=batch.batch_id, accepted=1, duplicate=False)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/docs", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bundle() -> Bundle:
    spec = vibration_spec()
    rows = np.random.default_rng(0).normal(size=(40, len(spec.features))).astype(np.float32)
    trained = train_classifier(rows, ["normal", "worn"] * 20, seed=0)
    return Bundle.create(
        name="fleet", version=1, labels=trained.labels, input=spec, model=trained.onnx
    )


def _stored(database: Path, prefix: str) -> set[str]:
    """The ids of the simulated devices' telemetry batches in the hub's database, read
    beside it."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT batch_id FROM telemetry_batches WHERE device_id LIKE ?", (f"{prefix}%",)
        ).fetchall()
    return {str(uuid.UUID(row[0])) for row in rows}


def _cpu_s(pid: int) -> float:
    """CPU seconds process `pid` has used, user and system: the hub's cost per report holds
    still when other work on the machine takes cores from it, as its rate does not."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _p99(values: list[float]) -> float | None:
    return round(float(np.percentile(values, 99)), 3) if values else None


def _report(
    args: argparse.Namespace,
    steady: SimSummary,
    stored: set[str],
    twin: list[float],
    peak: SimSummary,
    anchor: SimSummary,
    cpu_ms: float,
    postgres: SimSummary | str,
    mqtt: _MqttPeak | str,
    growth: retention.Growth,
) -> None:
    result = {
        "devices": steady.devices_up,
        "lost": len(set(steady.acked_batches) - stored),
        "ingest_p99_ms": steady.ingest_p99_ms,
        "reports_per_s_http": peak.reports_per_s,
        "reports_per_s_postgres": None if isinstance(postgres, str) else postgres.reports_per_s,
        "reports_per_s_mqtt": None if isinstance(mqtt, str) else mqtt.reports_per_s,
        "lost_mqtt": None if isinstance(mqtt, str) else mqtt.lost,
        "twin_p99_s": _p99(twin),
        "db_growth_bounded": growth.bounded,
        "anchor_reports_per_s": anchor.reports_per_s,
        "http_vs_anchor": round(peak.reports_per_s / max(anchor.reports_per_s, 1e-9), 3),
        "hub_cpu_ms_per_report": round(cpu_ms, 3),
    }
    table = Table(
        title=f"one hub, {os.cpu_count()} cores shared with the simulator and its servers"
    )
    for column in ("measure", "value", "goal", "how"):
        table.add_column(column)
    rows = [
        ("devices", ">= 10000", f"up of {args.devices}, a report each {args.interval:g} s"),
        ("lost", "0", f"{len(steady.acked_batches)} acked, {len(stored)} stored"),
        ("ingest_p99_ms", "<= 500", f"p50 {steady.ingest_p50_ms} ms"),
        ("twin_p99_s", "<= 5", f"{len(twin)} of {steady.devices_up} followed"),
        (
            "reports_per_s_http",
            ">= 5000",
            f"{args.peak_devices} devices flat out, {peak.reports_failed} failed",
        ),
        ("anchor_reports_per_s", "-", "the same load, a bare endpoint"),
        ("http_vs_anchor", "-", "hub against anchor"),
        ("hub_cpu_ms_per_report", "-", "the hub's CPU time at peak"),
        (
            "reports_per_s_postgres",
            ">= 5000",
            postgres
            if isinstance(postgres, str)
            else f"{args.peak_devices} devices flat out, {postgres.reports_failed} failed",
        ),
        (
            "reports_per_s_mqtt",
            ">= 20000",
            mqtt
            if isinstance(mqtt, str)
            else f"{args.peak_devices} devices through Mosquitto, {mqtt.failed} failed",
        ),
        (
            "lost_mqtt",
            "0",
            mqtt if isinstance(mqtt, str) else f"of {mqtt.acked} the broker acked",
        ),
        (
            "db_growth_bounded",
            "true",
            f"retention.py: {retention.DEVICES} devices, {len(growth.days)} simulated days",
        ),
    ]
    for key, goal, how in rows:
        value = result[key]
        table.add_row(key, "null" if value is None else str(value), goal, how)
    Console(width=140).print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bare-hub":
        _bare_hub(int(sys.argv[2]))
    else:
        main()
