from pathlib import Path

import pytest

from bundles import random_bundle
from edgestack.agent.download import download
from edgestack.agent.link import HubLink
from edgestack.bundle import BundleStore, digest
from edgestack.demo import LocalFleet
from edgestack.protocol import EnrolRequest, Hardware

pytestmark = pytest.mark.integration

PI = Hardware(cores=4, ram_mb=2048, arch="aarch64", providers=["CPUExecutionProvider"])


@pytest.mark.anyio
async def test_a_download_cut_by_a_restart_resumes_from_the_hub_where_it_stopped(
    tmp_path: Path,
) -> None:
    bundles = BundleStore(tmp_path / "bundles")
    with LocalFleet(tmp_path / "fleet", []) as fleet:
        fleet.start_hub()
        # The hub serves the bundle it signed, under that bundle's digest.
        key = fleet.client.register_model(random_bundle(5).pack()).digest
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

    assert digest(data) == key
    assert (artifact.start, rest) == (half, data[half:])
    assert path.read_bytes() == data
    assert sorted(p.name for p in bundles.root.iterdir()) == [f"{key}.bundle"]
