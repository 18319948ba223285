from pathlib import Path

import numpy as np
import pytest

from edgestack.agent.download import download
from edgestack.agent.link import HubLink
from edgestack.bundle import Bundle, BundleStore
from edgestack.demo import LocalFleet
from edgestack.learning import train_classifier
from edgestack.processing import vibration_spec
from edgestack.protocol import EnrolRequest, Hardware

pytestmark = pytest.mark.integration

PI = Hardware(cores=4, ram_mb=2048, arch="aarch64", providers=["CPUExecutionProvider"])


def _bundle() -> bytes:
    spec = vibration_spec()
    rows = np.random.default_rng(5).normal(size=(40, len(spec.features))).astype(np.float32)
    trained = train_classifier(rows, ["normal", "worn"] * 20, seed=5)
    return Bundle.create(
        name="m", version=1, labels=trained.labels, input=spec, model=trained.onnx
    ).pack()


@pytest.mark.anyio
async def test_a_download_cut_by_a_restart_resumes_from_the_hub_where_it_stopped(
    tmp_path: Path,
) -> None:
    bundles = BundleStore(tmp_path / "bundles")
    with LocalFleet(tmp_path / "fleet", []) as fleet:
        fleet.start_hub()
        # The hub serves the bundle it signed, of another digest than the one registered.
        key = fleet.client.register_model(_bundle()).digest
        link = HubLink(fleet.hub_url)
        enrolled = await link.enrol(
            EnrolRequest(device_id="edge-1", enrol_token=fleet.enrol_token, hardware=PI)
        )
        link.token = enrolled.device_token
        async with link.artifact(key) as whole:
            data = b"".join([chunk async for chunk in whole.chunks])
        half = len(data) // 2
        # What a run killed half way through left behind.
        (bundles.root / f"{key}.part").write_bytes(data[:half])

        async with link.artifact(key, offset=half) as artifact:
            rest = b"".join([chunk async for chunk in artifact.chunks])
        path = await download(link, bundles, key)
        await link.aclose()

    assert (artifact.start, rest) == (half, data[half:])
    assert path.read_bytes() == data
    assert sorted(p.name for p in bundles.root.iterdir()) == [f"{key}.bundle"]
