"""Builders for hub tests: wire messages, bundles, and looks into the hub's tables."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from edgestack.bundle import Bundle, FeatureSpec, Footprint, InputSpec, Reference, Target
from edgestack.hub.context import HubContext
from edgestack.protocol import (
    DataSample,
    DriftReport,
    Event,
    EventBatch,
    Feeds,
    Hardware,
    MonitorReport,
    SampleBatch,
    TelemetryBatch,
)

ADMIN_TOKEN = "test-admin-token"
ENROL_TOKEN = "test-enrol-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HARDWARE = Hardware(cores=4, ram_mb=2048, arch="aarch64", providers=["CPUExecutionProvider"])
SPEC = InputSpec(
    sensors=["vib_x", "vib_y"],
    rate_hz=400,
    window=64,
    hop=32,
    extractors=[FeatureSpec(kind="time_stats")],
    features=["rms", "peak"],
)


@dataclass(frozen=True)
class Device:
    device_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


Enrol = Callable[[str], Awaitable[Device]]
Ready = Callable[..., Awaitable[Device]]
FEEDS = Feeds(sensors=SPEC.sensors, rate_hz=SPEC.rate_hz, extractors=["fft_bands", "time_stats"])


def telemetry_batch(seq: int = 1, **changes: object) -> TelemetryBatch:
    end = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=5 * seq)
    fields: dict[str, object] = {
        "batch_id": uuid.uuid4(),
        "seq": seq,
        "start": end - timedelta(seconds=5),
        "end": end,
        "windows": 10,
        "predictions": {"normal": 9, "worn": 1},
        "bad_input": {"nan": 2},
        "bad_examples": [{"reason": "nan", "example": "accel_x"}],
        "raw_bytes": 40_000,
        "uplink_bytes": 900,
    }
    return TelemetryBatch.model_validate({**fields, **changes})


REFERENCE = Reference(rows=1000, edges=[[-1.0, 0.0, 1.0]] * 2, shares=[[0.25] * 4] * 2)
STEADY = [[10, 10, 10, 10], [10, 10, 10, 10]]  # 40 windows as the training rows spread
SHIFTED = [[0, 0, 0, 40], [10, 10, 10, 10]]  # 40 windows, the first feature above its range


async def registered_with_reference(client: httpx.AsyncClient) -> str:
    """Register a bundle of `SPEC` whose manifest carries `REFERENCE`; its signed digest."""
    return await registered(client, reference=REFERENCE)


async def registered(client: httpx.AsyncClient, **manifest: Any) -> str:
    """Register a bundle "motor" of `SPEC` with `manifest`'s other fields; its signed digest."""
    bundle = Bundle.create(
        name="motor", labels=["normal", "worn"], input=SPEC, model=b"m", **manifest
    )
    response = await client.post(
        "/api/v1/models",
        content=bundle.pack(),
        headers={**ADMIN, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    digest: str = response.json()["digest"]
    return digest


def monitored_batch(
    seq: int, digest: str, counts: list[list[int]], *, outbox_pending: int = 0, **report: object
) -> str:
    """A telemetry batch, as JSON, of 40 windows of bundle `digest` whose monitoring counted
    `counts` per feature and reference bin, with one confidence change, and `report`'s other
    fields."""
    monitoring = MonitorReport(
        drift=DriftReport(counts=counts, psi=[0.0, 0.0], ks=[0.0, 0.0]),
        changes={"confidence": 1},
        **report,  # type: ignore[arg-type]
    )
    batch = telemetry_batch(
        seq,
        windows=40,
        bundle_digest=digest,
        monitoring=monitoring,
        outbox_pending=outbox_pending,
    )
    return batch.model_dump_json()


def event_batch(count: int = 2) -> EventBatch:
    return EventBatch(
        batch_id=uuid.uuid4(),
        events=[
            Event(
                event_id=uuid.uuid4(),
                at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
                kind="alarm_raised",
                severity="warning",
                label="worn",
                confidence=0.9,
                message=f"worn for {i + 4} windows",
            )
            for i in range(count)
        ],
    )


def sample_batch(*widths: int, label: str = "normal", dataset: str = "default") -> SampleBatch:
    return SampleBatch(
        batch_id=uuid.uuid4(),
        spec=SPEC,
        dataset=dataset,
        samples=[
            DataSample(
                at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
                label=label,
                features=[float(i)] * width,
            )
            for i, width in enumerate(widths or (2, 2))
        ],
    )


def packed_bundle(
    name: str = "motor",
    version: int = 1,
    model: bytes = b"onnx-model",
    footprint: Footprint | None = None,
    target: Target = "onnx",
) -> bytes:
    labels = ["normal", "worn"]
    return Bundle.create(
        name=name,
        version=version,
        labels=labels,
        input=SPEC,
        model=model,
        footprint=footprint,
        target=target,
    ).pack()


def count(hub: HubContext, table: type) -> int:
    with hub.db.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


async def wait_until(condition: Callable[[], bool], *, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def collecting(
    client: httpx.AsyncClient, device_id: str, label: str = "normal", dataset: str = "default"
) -> None:
    """Ask a device, through its desired state, to collect `label` into `dataset`: the only
    samples it may send."""
    response = await client.patch(
        f"/api/v1/devices/{device_id}/desired",
        json={"collect": {"label": label, "dataset": dataset}},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
