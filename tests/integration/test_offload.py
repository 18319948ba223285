"""Joint inference with real processes: a hub, and an agent started with `--serve` as the edge
node, answer offloaded windows with a bigger model fetched and verified on first use."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from bundles import random_bundle
from conftest import free_port
from edgestack.bundle import Bundle, Lineage
from edgestack.client import HubClient
from edgestack.dataset import read_dataset
from edgestack.demo import LocalFleet, wait_until
from edgestack.learning import train_classifier
from edgestack.offload import calibrate
from edgestack.predictor import OnnxPredictor
from edgestack.processing import vibration_spec
from edgestack.protocol import (
    BundleRef,
    DataSample,
    DeployRequest,
    DesiredPatch,
    Hardware,
    InferenceAnswer,
    InferenceRequest,
    OffloadPolicy,
    OffloadReport,
    SampleImport,
)

from .test_cli import cli

pytestmark = pytest.mark.integration

EDGE = "edge-node"
DEVICE = "device-1"
WIDTH = len(vibration_spec().features)


def _edge_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_an_edge_node_and_the_hub_answer_as_the_bundle_does(tmp_path: Path) -> None:
    port = free_port()
    edge_url = f"http://127.0.0.1:{port}"
    rows = np.random.default_rng(5).normal(size=(8, WIDTH)).round(3).tolist()
    with LocalFleet(tmp_path, [EDGE]) as fleet:
        fleet.start_hub()
        big = random_bundle(4, name="big", labels=("normal", "imbalance", "wear")).pack()
        view = fleet.client.register_model(big)
        model = BundleRef(name=view.name, version=view.version, digest=view.digest)
        fleet.start_agent(EDGE, serve_port=port)
        wait_until(lambda: _edge_up(edge_url), timeout_s=60, what="the edge node to answer")
        request = InferenceRequest(model=model, rows=rows)

        with httpx.Client(base_url=edge_url, timeout=30) as edge:
            answered = edge.post("/api/v1/infer", content=request.model_dump_json())
            unknown = edge.post(
                "/api/v1/infer",
                content=request.model_copy(
                    update={"model": model.model_copy(update={"digest": "0" * 64})}
                ).model_dump_json(),
            )
            empty = edge.post("/api/v1/infer", json={"model": model.model_dump(), "rows": []})
        cloud = fleet.client.infer(request)

    assert answered.status_code == 200, answered.text
    at_edge = InferenceAnswer.model_validate_json(answered.content)
    assert at_edge.tier == "edge"
    assert cloud.tier == "cloud"
    assert at_edge.labels == cloud.labels
    assert unknown.status_code == 404
    assert empty.status_code == 422
    assert empty.json()["detail"].startswith("rows: ")


def _offloading(client: HubClient, since: int) -> tuple[int, list[OffloadReport]]:
    """The device's telemetry batches after id `since` that have offloading in them, and the
    id of the newest batch."""
    batches = client.telemetry(DEVICE, after_id=since, limit=1000)
    newest = batches[-1].id if batches else since
    return newest, [b.batch.offload for b in batches if b.batch.offload and b.batch.windows]


def _until(client: HubClient, what: str, holds: Callable[[OffloadReport], bool]) -> None:
    """Wait, up to 60 s, for a telemetry batch sent from now on whose offloading `holds`."""
    since, _ = _offloading(client, 0)

    def seen() -> bool:
        return any(holds(report) for report in _offloading(client, since)[1])

    wait_until(seen, timeout_s=60, what=what)


def test_a_device_offloads_hard_windows_to_the_edge_and_the_cloud_and_falls_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    edge_url = f"http://127.0.0.1:{port}"
    with LocalFleet(tmp_path, [EDGE, DEVICE]) as fleet:
        fleet.start_hub()
        client = fleet.client
        client.register_model(random_bundle(1, name="motor").pack())
        big = client.register_model(random_bundle(2, name="big", labels=("a", "b", "c")).pack())
        fleet.start_agent(EDGE, serve_port=port)
        fleet.start_agent(DEVICE)
        wait_until(lambda: _edge_up(edge_url), timeout_s=60, what="the edge node to answer")
        wait_until(lambda: len(client.devices()) == 2, timeout_s=60, what="both to enrol")
        client.deploy(DeployRequest(model="motor", devices=[DEVICE]))
        # Threshold 0: every window is hard, so each batch has offloaded windows to count.
        edge = OffloadPolicy(
            model=BundleRef(name=big.name, version=big.version, digest=big.digest),
            threshold=0.0,
            tier="edge",
            server=edge_url,
            timeout_s=5,
        )

        client.update_desired(DEVICE, DesiredPatch(offload=edge, telemetry_interval_s=0.5))
        _until(client, "answers from the edge", lambda r: r.answered.get("edge", 0) > 0)
        to_cloud = cli(
            fleet, "offload", "set", DEVICE, "big", "--tier", "cloud", "--threshold", "0"
        )
        assert to_cloud.returncode == 0, to_cloud.stderr + to_cloud.stdout
        _until(client, "answers from the cloud", lambda r: r.answered.get("cloud", 0) > 0)
        client.update_desired(DEVICE, DesiredPatch(offload=edge))
        _until(client, "the edge again", lambda r: r.answered.get("edge", 0) > 0)
        fleet.kill_agent(EDGE)
        _until(
            client,
            "fallbacks with the edge node gone",
            lambda r: r.fallbacks > 0 and r.fallbacks == r.windows and not r.answered,
        )
        since, _ = _offloading(client, 0)
        wait_until(
            lambda: any(
                b.batch.predictions for b in client.telemetry(DEVICE, after_id=since, limit=1000)
            ),
            timeout_s=30,
            what="the device to keep classifying",
        )
        reported = client.device(DEVICE).reported

    assert reported is not None and reported.status == "running"


def _trained_on_a_dataset(client: HubClient) -> BundleRef:
    """A model of the motor's features trained on version 1 of dataset `bench`, as its lineage
    says, registered."""
    rng = np.random.default_rng(0)
    labels = ["normal", "worn"] * 100
    rows = rng.normal(size=(200, WIDTH)) + np.array([[0.8 * (y == "worn")] for y in labels])
    start = datetime(2025, 1, 1, tzinfo=UTC)
    samples = [
        DataSample(at=start + timedelta(seconds=i), label=y, features=row.tolist())
        for i, (row, y) in enumerate(zip(rows, labels, strict=True))
    ]
    spec = vibration_spec()
    client.import_samples("bench", SampleImport(batch_id=uuid.uuid4(), spec=spec, samples=samples))
    version = client.freeze("bench").version
    trained = train_classifier(rows.astype(np.float32), labels, seed=0)
    lineage = Lineage(dataset="bench", dataset_version=version, trainer="logreg")
    bundle = Bundle.create(
        name="small", labels=trained.labels, input=spec, model=trained.onnx, lineage=lineage
    )
    view = client.register_model(bundle.pack())
    return BundleRef(name=view.name, version=view.version, digest=view.digest)


def test_offload_set_calibrates_on_the_held_out_windows_of_the_devices_model(
    tmp_path: Path,
) -> None:
    with LocalFleet(tmp_path, [DEVICE]) as fleet:
        fleet.start_hub()
        client = fleet.client
        hardware = Hardware(cores=4, ram_mb=2048, arch="aarch64", providers=[])
        body = {
            "device_id": DEVICE,
            "enrol_token": fleet.enrol_token,
            "hardware": hardware.model_dump(),
        }
        enrolled = httpx.post(f"{fleet.hub_url}/api/v1/enrol", json=body)
        assert enrolled.status_code == 200, enrolled.text
        small = _trained_on_a_dataset(client)
        client.deploy(DeployRequest(model="small", devices=[DEVICE], force=True))
        client.register_model(random_bundle(2, name="big", labels=("a", "b", "c")).pack())
        table = read_dataset(client.dataset_parquet("bench", 1))
        onnx = Bundle.unpack(client.bundle(small.digest)).model
        _, held_out = OnnxPredictor(onnx, ["normal", "worn"]).predict(
            table.features[table.test].astype(np.float32)
        )

        result = cli(
            fleet, "offload", "set", DEVICE, "big", "--tier", "cloud", "--gate", "margin",
            "--fraction", "0.25",
        )  # fmt: skip
        policy = client.device(DEVICE).desired.offload
        cleared = cli(fleet, "offload", "clear", DEVICE)

    assert result.returncode == 0, result.stderr + result.stdout
    assert policy is not None and policy.model.name == "big"
    assert policy.threshold == calibrate(held_out, 0.25, "margin")
    assert f"reaches {policy.threshold:.4f}" in result.stdout
    assert cleared.returncode == 0, cleared.stderr + cleared.stdout
