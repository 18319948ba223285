"""Joint inference with real processes: a hub, and an agent started with `--serve` as the edge
node, answer offloaded windows with a bigger model fetched and verified on first use."""

from pathlib import Path

import httpx
import numpy as np
import pytest

from bundles import random_bundle
from conftest import free_port
from edgestack.demo import LocalFleet, wait_until
from edgestack.processing import vibration_spec
from edgestack.protocol import BundleRef, InferenceAnswer, InferenceRequest

pytestmark = pytest.mark.integration

EDGE = "edge-node"
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
