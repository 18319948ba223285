import asyncio
import gzip
from pathlib import Path

import httpx
import numpy as np
import pytest

from edgestack.agent import Agent, AgentSettings
from edgestack.agent.link import HubLink
from edgestack.agent.store import LocalStore
from edgestack.bundle import Bundle, BundleStore, digest
from edgestack.learning import train_classifier
from edgestack.processing import vibration_spec
from edgestack.protocol import BundleRef, DesiredState, TelemetryBatch

# Nothing listens on the discard port: the hub is down for the whole test.
DEAD_HUB = "http://127.0.0.1:9"


def _bundle(version: int, seed: int) -> bytes:
    spec = vibration_spec()
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(30, len(spec.features))).astype(np.float32)
    trained = train_classifier(features, ["normal", "imbalance", "bearing_wear"] * 10, seed=seed)
    bundle = Bundle.create(
        name="m", version=version, labels=trained.labels, input=spec, model=trained.onnx
    )
    return bundle.pack()


def _installed(data_dir: Path, data: bytes, version: int) -> BundleRef:
    """A device as a previous run left it: the bundle stored and its desired state applied."""
    BundleStore(data_dir / "bundles").put(data)
    ref = BundleRef(name="m", version=version, digest=digest(data))
    store = LocalStore(data_dir / "agent.db")
    store.set("device_token", "from-last-run")
    store.set("desired", DesiredState(version=3, bundle=ref).model_dump_json())
    store.close()
    return ref


class _Artifacts:
    """A hub that serves only bundles, by digest, and counts the downloads."""

    def __init__(self, served: dict[str, bytes]) -> None:
        self.served = served
        self.downloads: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        self.downloads.append(key)
        return httpx.Response(200, content=self.served[key])

    def link(self) -> HubLink:
        return HubLink("http://hub", transport=httpx.MockTransport(self))


def _agent(data_dir: Path) -> Agent:
    settings = AgentSettings(
        hub_url=DEAD_HUB,
        enrol_token="t",
        device_id="edge-1",
        data_dir=data_dir,
        chunk_s=0.05,
        drain_timeout_s=0,
    )
    return Agent(settings)


def _telemetry(data_dir: Path) -> list[TelemetryBatch]:
    store = LocalStore(data_dir / "agent.db")
    batches = []
    while (item := store.peek()) is not None:
        if item.kind == "telemetry":
            batches.append(TelemetryBatch.model_validate_json(gzip.decompress(item.body)))
        store.ack(item)
    store.close()
    return batches


@pytest.mark.anyio
async def test_offline_restart_runs_the_last_good_bundle_and_buffers(tmp_path: Path) -> None:
    ref = _installed(tmp_path, _bundle(1, seed=1), version=1)
    agent = _agent(tmp_path)
    run = asyncio.create_task(agent.run())

    for _ in range(100):
        await asyncio.sleep(0.05)
        if agent.hot.telemetry.windows >= 3:
            break
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    batches = _telemetry(tmp_path)
    assert agent.hot.model is not None and agent.hot.model.ref == ref
    assert [b.seq for b in batches] == [1]
    assert batches[0].bundle_digest == ref.digest
    assert sum(batches[0].predictions.values()) == batches[0].windows >= 3


@pytest.mark.anyio
async def test_a_tampered_download_is_refused_and_the_old_model_keeps_running(
    tmp_path: Path,
) -> None:
    good = _installed(tmp_path, _bundle(1, seed=1), version=1)
    agent = _agent(tmp_path)
    await agent.apply(DesiredState(version=3, bundle=good))
    other = _bundle(2, seed=2)
    wanted = BundleRef(name="m", version=2, digest=digest(other))

    altered = bytearray(other)
    altered[len(altered) // 2] ^= 0xFF
    agent.link = _Artifacts({wanted.digest: bytes(altered)}).link()
    await agent.apply(DesiredState(version=4, bundle=wanted))

    assert agent.hot.model is not None and agent.hot.model.ref == good
    assert agent.error is not None and "digest mismatch" in agent.error
    assert not agent.bundles.has(wanted.digest)
    await agent.link.aclose()
    agent.store.close()
