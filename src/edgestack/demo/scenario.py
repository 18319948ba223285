"""The whole edge-AI loop on one machine, as `edgestack demo` runs it.

Hub and agents are real processes; this module drives them only through the
hub's control API, as any outside application would.
"""

import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from edgestack.demo.fleet import LocalFleet, wait_until
from edgestack.learning.workflow import train_model
from edgestack.protocol import (
    Collection,
    DeployRequest,
    DesiredPatch,
    FaultInjection,
    TrainRequest,
)
from edgestack.sensing import FAULTS

__all__ = [
    "DemoOptions",
    "DemoReport",
    "DemoResult",
    "advance",
    "collect",
    "progress_bars",
    "reach",
    "run_demo",
    "running",
    "start",
]

MODEL_NAME = "motor-faults"


@dataclass(frozen=True)
class DemoOptions:
    root: Path = Path("demo-data")
    devices: tuple[str, ...] = ("motor-1", "motor-2", "motor-3")
    faulty_device: str = "motor-2"
    fault: str = "bearing_wear"
    windows_per_label: int = 120
    observe_s: float = 20.0
    seed: int = 0

    @classmethod
    def quick(cls, root: Path = Path("demo-data")) -> "DemoOptions":
        return cls(root=root, windows_per_label=48, observe_s=6.0)


class ModelSummary(BaseModel):
    name: str
    version: int
    accuracy: float


class AlarmSummary(BaseModel):
    device: str
    label: str
    at: datetime


class DemoReport(BaseModel):
    """What `--report` writes: exactly these keys."""

    model_config = ConfigDict(extra="forbid")

    devices: int
    model: ModelSummary
    deployed: int
    predictions: int
    alarms: list[AlarmSummary]
    faulty_device: str
    uplink_bytes: int
    raw_bytes: int


@dataclass(frozen=True)
class DemoResult:
    report: DemoReport
    fault_at: datetime


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoResult:
    console = console or Console()
    shutil.rmtree(options.root, ignore_errors=True)
    with LocalFleet(options.root, options.devices) as fleet, progress_bars(console) as progress:
        hub = fleet.client
        start(fleet, progress)
        collect(fleet, progress, options, MODEL_NAME)

        # Trained as `edgestack train` trains: on a frozen version of the collected dataset.
        hub.freeze(MODEL_NAME)
        task = progress.add_task("training and registering", total=1)
        request = TrainRequest(dataset=MODEL_NAME, model="random_forest", seed=options.seed)
        trained = train_model(hub, request, partial(advance, progress, task))
        model, metrics = trained.model, trained.result.metrics()

        deployment = hub.deploy(
            DeployRequest(model=MODEL_NAME, version=model.version, devices=list(options.devices))
        )
        task = progress.add_task("deploying to every device", total=len(deployment.devices))
        wait_until(
            lambda: reach(
                progress, task, lambda: running(fleet, model.digest), len(options.devices)
            ),
            timeout_s=60,
            what="every device to run the model",
        )

        _observe(progress, "inference on healthy machines", options.observe_s)
        newest = hub.events(newest_first=True, limit=1)
        first_event = newest[0].id if newest else 0
        hub.update_desired(
            options.faulty_device, DesiredPatch(fault=FaultInjection(kind=options.fault))
        )
        fault_at = datetime.now(UTC)
        task = progress.add_task(f"{options.fault} on {options.faulty_device}", total=1)
        wait_until(
            lambda: _alarms(fleet, first_event, options.faulty_device),
            timeout_s=30,
            what=f"an alarm from {options.faulty_device}",
            every_s=0.25,
        )
        progress.advance(task)
        _observe(progress, "watching for false alarms", options.observe_s)

        # Stopped agents send their last telemetry, so the totals below are complete.
        fleet.stop_agents()
        report = _report(fleet, model.name, model.version, metrics, model.digest, options)
    _print_summary(console, report, fault_at)
    return DemoResult(report, fault_at)


def start(fleet: LocalFleet, progress: Progress, hub_env: dict[str, str] | None = None) -> None:
    """Start `fleet`'s hub (its settings `hub_env` added) and agents, and wait until every
    agent has enrolled and reported."""
    devices = len(fleet.devices)
    step = progress.add_task("starting hub and agents", total=devices + 1)
    fleet.start_hub(env=hub_env)
    progress.advance(step)
    fleet.start_agents()
    wait_until(
        lambda: reach(progress, step, lambda: 1 + _reporting(fleet), devices + 1),
        timeout_s=60,
        what="every agent to enrol and report",
    )


def _reporting(fleet: LocalFleet) -> int:
    return sum(d.reported is not None for d in fleet.client.devices())


def running(fleet: LocalFleet, digest: str) -> int:
    """How many of `fleet`'s devices report running bundle `digest`."""
    return sum(
        d.reported is not None
        and d.reported.bundle is not None
        and d.reported.bundle.digest == digest
        for d in fleet.client.devices()
    )


def progress_bars(console: Console) -> Progress:
    """The bars a demo shows its steps with."""
    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.completed:>4.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=console,
    )


def collect(fleet: LocalFleet, progress: Progress, options: DemoOptions, dataset: str) -> None:
    """Have every device collect `options.windows_per_label` windows of each condition into
    `dataset`, its simulated machine given that fault; then collect no more, fault-free."""
    hub = fleet.client
    for label in FAULTS:
        fault = None if label == "normal" else FaultInjection(kind=label)
        patch = DesiredPatch(collect=Collection(label=label, dataset=dataset), fault=fault)
        for device in options.devices:
            hub.update_desired(device, patch)
        need = options.windows_per_label * len(options.devices)
        task = progress.add_task(f"collecting '{label}' windows", total=need)
        wait_until(
            partial(reach, progress, task, partial(_collected, fleet, label, options), need),
            timeout_s=20 + options.windows_per_label,
            what=f"{need} '{label}' windows from the devices",
            every_s=0.5,
        )
    for device in options.devices:
        hub.update_desired(device, DesiredPatch(collect=None, fault=None))


def reach(progress: Progress, task: TaskID, count: Callable[[], int], target: int) -> bool:
    """Show `count()` against `target` on `task`; whether it got there."""
    done = count()
    progress.update(task, completed=min(done, target))
    return done >= target


def advance(progress: Progress, task: TaskID, what: str, done: int, total: int) -> None:
    """Show a workflow's progress (`what`, `done` of `total`) on `task`."""
    progress.update(task, description=what, completed=done, total=total)


def _collected(fleet: LocalFleet, label: str, options: DemoOptions) -> int:
    """Windows of `label` so far, counting no device beyond its share."""
    per_device = Counter(s.device_id for s in fleet.client.samples(label=label).samples)
    return sum(min(per_device[d], options.windows_per_label) for d in options.devices)


def _alarms(fleet: LocalFleet, after_id: int, device: str | None = None) -> list[str]:
    return [
        e.device_id
        for e in fleet.client.events(after_id=after_id, device=device, limit=1000)
        if e.event.kind == "alarm_raised" and e.device_id is not None
    ]


def _observe(progress: Progress, description: str, seconds: float) -> None:
    task = progress.add_task(description, total=seconds)
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        progress.update(task, completed=elapsed)
        time.sleep(0.25)
    progress.update(task, completed=seconds)


def _report(
    fleet: LocalFleet,
    name: str,
    version: int,
    metrics: dict[str, float],
    digest: str,
    options: DemoOptions,
) -> DemoReport:
    devices = fleet.client.devices()
    alarms = [
        AlarmSummary(device=e.device_id, label=e.event.label or "", at=e.event.at)
        for e in fleet.client.events(limit=1000)
        if e.event.kind == "alarm_raised" and e.device_id is not None
    ]
    return DemoReport(
        devices=sum(d.reported is not None and d.telemetry.batches > 0 for d in devices),
        model=ModelSummary(name=name, version=version, accuracy=metrics["accuracy"]),
        deployed=sum(
            d.reported is not None
            and d.reported.bundle is not None
            and d.reported.bundle.digest == digest
            for d in devices
        ),
        predictions=sum(sum(d.telemetry.predictions.values()) for d in devices),
        alarms=alarms,
        faulty_device=options.faulty_device,
        uplink_bytes=sum(d.telemetry.uplink_bytes for d in devices),
        raw_bytes=sum(d.telemetry.raw_bytes for d in devices),
    )


def _print_summary(console: Console, report: DemoReport, fault_at: datetime) -> None:
    console.print()
    console.print(
        f"[bold]{report.devices}[/] devices enrolled and reporting; model "
        f"[bold]{report.model.name} v{report.model.version}[/] "
        f"(held-out accuracy {report.model.accuracy:.3f}) running on [bold]{report.deployed}[/]"
    )
    console.print(f"{report.predictions} predictions made on the devices")
    for alarm in report.alarms:
        delay = (alarm.at - fault_at).total_seconds()
        console.print(
            f"[red]alarm[/] {alarm.label} on {alarm.device}, {delay:.1f} s after the fault "
            f"was injected on {report.faulty_device}"
        )
    ratio = report.raw_bytes / max(1, report.uplink_bytes)
    console.print(
        f"uplink {report.uplink_bytes / 1e3:.1f} kB instead of {report.raw_bytes / 1e6:.1f} MB "
        f"of raw samples ({ratio:.0f}x less)"
    )
