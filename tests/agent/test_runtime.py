import asyncio
import gzip
import logging
import subprocess
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import TypeAdapter

from bundles import random_bundle
from edgestack.agent import Agent, AgentSettings, DataDirError, serve
from edgestack.agent.federated import KeptWindows
from edgestack.agent.hotpath import FAILURE_LIMIT
from edgestack.agent.link import HubLink, HubUnavailable
from edgestack.agent.store import LocalStore
from edgestack.bundle import Bundle, BundleStore, InputSpec, PublicKey, StageSpec, digest
from edgestack.hub.signing import HubKeys
from edgestack.processing import vibration_spec
from edgestack.protocol import (
    BundleRef,
    Collection,
    DesiredState,
    Event,
    EventBatch,
    FaultInjection,
    FederatedTask,
    OffloadPolicy,
    TelemetryBatch,
    WindowBatch,
    WindowRequest,
)
from edgestack.sensing.motor import MotorSimulator
from edgestack.sensing.simulated.weather import WeatherSimulator

# Nothing listens on the discard port: the hub is down for the whole test.
DEAD_HUB = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def hub_keys(tmp_path_factory: pytest.TempPathFactory) -> HubKeys:
    """The keys of the hub the bundles come from; agents made by `_installed` pin them."""
    return HubKeys(tmp_path_factory.mktemp("hub-keys"))


def _bundle(
    version: int,
    seed: int,
    *,
    keys: HubKeys,
    spec: InputSpec | None = None,
    width: int | None = None,
) -> bytes:
    """A random model on the motor's features, signed by `keys`; `width` gives it another
    number of inputs."""
    labels = ("normal", "imbalance", "bearing_wear")
    bundle = random_bundle(seed, version=version, labels=labels, spec=spec, width=width)
    return Bundle(keys.sign(bundle.manifest, ttl=timedelta(days=1)), bundle.model).pack()


def _installed(data_dir: Path, data: bytes, version: int, keys: HubKeys) -> BundleRef:
    """A device as a previous run left it: the hub's keys pinned, the bundle stored and its
    desired state applied."""
    BundleStore(data_dir / "bundles").put(data)
    ref = BundleRef(name="m", version=version, digest=digest(data))
    store = LocalStore(data_dir / "agent.db")
    store.set("device_token", "from-last-run")
    store.set("signing_keys", TypeAdapter(list[PublicKey]).dump_json(keys.public()).decode())
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


def _agent(data_dir: Path, *, monitoring: bool = True) -> Agent:
    settings = AgentSettings(
        hub_url=DEAD_HUB,
        enrol_token="t",
        device_id="edge-1",
        data_dir=data_dir,
        chunk_s=0.05,
        drain_timeout_s=0,
        monitoring=monitoring,
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


async def _run_offline(agent: Agent, windows: int) -> None:
    """Run `agent` against no hub until it has classified `windows`, then stop it."""
    run = asyncio.create_task(agent.run())
    for _ in range(100):
        await asyncio.sleep(0.05)
        if agent.hot.telemetry.windows >= windows:
            break
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


@pytest.mark.anyio
async def test_offline_restart_runs_the_last_good_bundle_and_buffers(
    tmp_path: Path, hub_keys: HubKeys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edgestack.agent")
    ref = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    agent = _agent(tmp_path)

    await _run_offline(agent, 3)

    batches = _telemetry(tmp_path)
    assert agent.hot.model is not None and agent.hot.model.ref == ref
    assert [b.seq for b in batches] == [1]
    assert batches[0].bundle_digest == ref.digest
    assert sum(batches[0].predictions.values()) == batches[0].windows >= 3
    monitoring = batches[0].monitoring
    assert monitoring is not None and sum(monitoring.confidence) >= 3
    assert monitoring.drift is None  # the bundle carries no reference
    # Said once, when the model first classified a live window, not at every window.
    assert [r.getMessage() for r in caplog.records].count("m v1 classified its first window") == 1


@pytest.mark.anyio
async def test_with_monitoring_off_telemetry_carries_none(
    tmp_path: Path, hub_keys: HubKeys
) -> None:
    _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    agent = _agent(tmp_path, monitoring=False)

    await _run_offline(agent, 3)

    (batch,) = _telemetry(tmp_path)
    assert batch.windows >= 3 and batch.monitoring is None


@pytest.mark.anyio
async def test_a_tampered_download_is_refused_and_the_old_model_keeps_running(
    tmp_path: Path,
    hub_keys: HubKeys,
) -> None:
    good = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    agent = _agent(tmp_path)
    await agent.apply(DesiredState(version=3, bundle=good))
    other = _bundle(2, seed=2, keys=hub_keys)
    wanted = BundleRef(name="m", version=2, digest=digest(other))

    altered = bytearray(other)
    altered[len(altered) // 2] ^= 0xFF
    agent.link = _Artifacts({wanted.digest: bytes(altered)}).link()
    await agent.apply(DesiredState(version=4, bundle=wanted))

    assert agent.hot.model is not None and agent.hot.model.ref == good
    assert agent.error is not None and "digest mismatch" in agent.error
    assert not agent.bundles.has(wanted.digest)
    assert [(e.kind, e.bundle_digest) for e in _events(agent)] == [
        ("model_loaded", good.digest),
        ("bundle_refused", wanted.digest),
    ]
    await agent.link.aclose()
    agent.store.close()


def _events(agent: Agent) -> list[Event]:
    """Take every event out of the agent's outbox."""
    events = []
    while (item := agent.store.peek()) is not None:
        if item.kind == "events":
            events.extend(EventBatch.model_validate_json(gzip.decompress(item.body)).events)
        agent.store.ack(item)
    return events


def _unbuildable_spec() -> InputSpec:
    spec = vibration_spec()
    return spec.model_copy(update={"steps": [StageSpec(kind="no_such_step")]})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (lambda keys: _bundle(2, seed=2, keys=keys, width=3), "its model takes 3"),
        (lambda keys: _bundle(2, seed=2, keys=keys, spec=_unbuildable_spec()), "no_such_step"),
    ],
    ids=["feature-width", "pipeline"],
)
async def test_a_bundle_that_cannot_run_is_reported_once_and_the_old_model_keeps_running(
    tmp_path: Path, hub_keys: HubKeys, bad: Callable[[HubKeys], bytes], reason: str
) -> None:
    good = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    agent = _agent(tmp_path)
    await agent.apply(DesiredState(version=3, bundle=good))
    data = bad(hub_keys)
    wanted = BundleRef(name="m", version=2, digest=digest(data))
    agent.link = _Artifacts({wanted.digest: data}).link()

    await agent.apply(DesiredState(version=4, bundle=wanted))
    # The same desired state again, as a restart or a twin answer brings it: not retried.
    await agent.apply(DesiredState(version=3, bundle=good))
    await agent.apply(DesiredState(version=4, bundle=wanted))
    events_before_new_version = _events(agent)
    await agent.apply(DesiredState(version=5, bundle=wanted))

    assert agent.hot.model is not None and agent.hot.model.ref == good
    assert agent.error is not None and reason in agent.error
    assert agent._reported().status == "error"
    assert [e.kind for e in events_before_new_version].count("load_failed") == 1
    failed = [e for e in events_before_new_version if e.kind == "load_failed"]
    assert reason in failed[0].message and failed[0].bundle_digest == wanted.digest
    assert [e.kind for e in _events(agent)] == ["load_failed"]
    await agent.link.aclose()
    agent.store.close()

    restarted = _agent(tmp_path)
    await restarted._restore()
    assert restarted.hot.model is not None and restarted.hot.model.ref == good
    assert restarted.error is not None and reason in restarted.error
    assert _events(restarted) == []
    await restarted.link.aclose()
    restarted.store.close()


@pytest.mark.anyio
async def test_a_model_that_keeps_failing_is_given_up_for_the_one_before(
    tmp_path: Path, hub_keys: HubKeys
) -> None:
    good = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    agent = _agent(tmp_path)
    await agent.apply(DesiredState(version=3, bundle=good))
    data = _bundle(2, seed=2, keys=hub_keys)
    wanted = BundleRef(name="m", version=2, digest=digest(data))
    agent.link = _Artifacts({wanted.digest: data}).link()
    await agent.apply(DesiredState(version=4, bundle=wanted))
    assert agent.hot.model is not None and agent.hot.model.ref == wanted

    def broken(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise RuntimeError("the model's kernel crashed")

    agent.hot.model.predictor.predict = broken  # type: ignore[method-assign]
    for _ in range(FAILURE_LIMIT * 2):
        await agent._on_worker(agent._tick, 8000)
    telemetry = agent.hot.telemetry.cut(1, 0, None)
    await agent.apply(DesiredState(version=4, bundle=wanted))
    events = _events(agent)

    assert agent.hot.model is not None and agent.hot.model.ref == good
    assert telemetry.failed_chunks == FAILURE_LIMIT
    assert sum(telemetry.predictions.values()) > 0, "the model before took over"
    reported = agent._reported()
    assert reported.status == "failed" and reported.bundle == good
    assert reported.error is not None and "the model's kernel crashed" in reported.error
    assert [e.kind for e in events] == ["model_loaded", "model_loaded", "model_failed"]

    restarted = _agent(tmp_path)
    await restarted._restore()
    assert restarted.hot.model is not None and restarted.hot.model.ref == good
    assert restarted._reported().status == "failed"
    await agent.link.aclose()
    agent.store.close()
    await restarted.link.aclose()
    restarted.store.close()


class _Refusing:
    """A hub whose answer to each message (by body) is scripted, then 200."""

    def __init__(self, answers: dict[bytes, list[httpx.Response]]) -> None:
        self.answers = answers
        self.received: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        self.received.append(body)
        scripted = self.answers.get(body)
        if scripted:
            return scripted.pop(0)
        return httpx.Response(
            200, json={"batch_id": str(uuid.uuid4()), "accepted": 1, "duplicate": False}
        )


def _refusal(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"detail": f"refused with {status}"}, headers=headers)


@pytest.mark.anyio
async def test_a_message_leaves_only_on_2xx_and_a_final_refusal_is_dead_lettered(
    tmp_path: Path,
) -> None:
    agent = _agent(tmp_path)
    hub = _Refusing(
        {
            b"busy": [_refusal(429, **{"Retry-After": "7"}), _refusal(503), _refusal(408)],
            b"invalid": [_refusal(422)],
            b"conflict": [_refusal(409)],
        }
    )
    agent.link = HubLink("http://hub", transport=httpx.MockTransport(hub))
    for body in (b"busy", b"invalid", b"conflict", b"fine"):
        agent.store.enqueue("events", body)

    retries = []
    while True:
        try:
            await agent._drain()
            break
        except HubUnavailable as exc:
            retries.append(exc.retry_after_s)

    assert retries == [7.0, None, None]
    assert hub.received == [b"busy"] * 4 + [b"invalid", b"conflict", b"fine"]
    dead = agent.store.dead_letters()
    assert [(p.body, reason.split(":")[0]) for p, reason in dead] == [
        (b"invalid", "hub answered 422"),
        (b"conflict", "hub answered 409"),
    ]
    assert agent.store.pending() == 0 and agent.store.dead_lettered() == 2
    await agent.link.aclose()
    agent.store.close()


@pytest.mark.anyio
async def test_a_data_dir_runs_only_the_device_that_first_used_it(tmp_path: Path) -> None:
    first = _agent(tmp_path)
    first.store.set("device_token", "token of edge-1")
    await first.link.aclose()
    first.store.close()
    other = AgentSettings(
        hub_url=DEAD_HUB, enrol_token="t", device_id="edge-2", data_dir=tmp_path, chunk_s=0.05
    )

    with pytest.raises(DataDirError, match="holds device 'edge-1', not 'edge-2'"):
        Agent(other)
    status = serve(other)
    again = _agent(tmp_path)

    assert status == 2
    assert again.store.get("device_token") == "token of edge-1"
    await again.link.aclose()
    again.store.close()


async def _run_until(agent: Agent, done: Callable[[], bool]) -> None:
    run = asyncio.create_task(agent.run())
    for _ in range(200):
        await asyncio.sleep(0.05)
        if done():
            break
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


@pytest.mark.anyio
async def test_recent_windows_asked_for_are_sent_once_least_confident_first(
    tmp_path: Path, hub_keys: HubKeys
) -> None:
    ref = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    store = LocalStore(tmp_path / "agent.db")
    asked = WindowRequest(request_id=7, count=3)
    desired = DesiredState(version=3, bundle=ref, send_windows=asked)
    store.set("desired", desired.model_dump_json())
    store.close()

    first = _agent(tmp_path)
    await _run_until(first, lambda: first.hot.telemetry.windows >= 8)
    kept = sorted(w.confidence for w in first.hot.recent.least_confident(1000))
    again = _agent(tmp_path)  # a restart under the same request sends nothing more
    await _run_until(again, lambda: again.hot.telemetry.windows >= 4)
    store = LocalStore(tmp_path / "agent.db")
    sent = []
    while (item := store.peek()) is not None:
        if item.kind == "windows":
            sent.append(WindowBatch.model_validate_json(gzip.decompress(item.body)))
        store.ack(item)
    store.close()

    [batch] = sent
    assert (batch.request_id, batch.bundle_digest, batch.spec) == (7, ref.digest, vibration_spec())
    confidences = [w.confidence for w in batch.windows]
    assert len(confidences) == 3 and confidences == sorted(confidences)
    # Windows the device still holds, the least confident of those it held when it answered.
    assert set(confidences) <= set(kept)
    assert {w.predicted for w in batch.windows} <= {"normal", "imbalance", "bearing_wear"}
    assert all(len(w.features) == len(vibration_spec().features) for w in batch.windows)


class _Recording(MotorSimulator):
    """A simulated motor that remembers how it was disturbed."""

    def __init__(self) -> None:
        super().__init__(seed=1)
        self.noises: list[float] = []

    def disturb(self, noise: float) -> None:
        super().disturb(noise)
        self.noises.append(noise)


@pytest.mark.anyio
async def test_a_fault_disturbs_a_simulated_machine_and_a_source_that_cannot_be_disturbed_says_so(
    tmp_path: Path,
) -> None:
    motor = _Recording()
    agent = Agent(_agent(tmp_path / "motor").settings, source=motor)
    await agent.apply(DesiredState(version=1, fault=FaultInjection(kind="imbalance", noise=4.0)))
    await agent.apply(DesiredState(version=2))
    weather = _agent(tmp_path / "weather")
    weather.source = WeatherSimulator(seed=1)  # faults, but no machine to surround with noise
    await weather.apply(DesiredState(version=1, fault=FaultInjection(kind="drift", noise=4.0)))

    assert motor.noises == [4.0, 1.0] and motor.fault == "normal" and agent.error is None
    assert weather.error is not None and "fault.noise" in weather.error
    for each in (agent, weather):
        await each.link.aclose()
        each.store.close()


@pytest.mark.anyio
async def test_a_monitoring_report_that_fails_is_left_out_and_the_counts_still_go_up(
    tmp_path: Path, hub_keys: HubKeys, caplog: pytest.LogCaptureFixture
) -> None:
    ref = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    agent = _agent(tmp_path)
    agent._loop = asyncio.get_running_loop()
    await agent.apply(DesiredState(version=3, bundle=ref))
    await agent._on_worker(agent._tick, 8192)  # a few windows
    monitor = agent.hot.monitor
    assert monitor is not None

    def broken() -> None:
        raise ValueError("a bug in a report")

    monitor.take = broken  # type: ignore[method-assign]
    await asyncio.to_thread(agent._cut_telemetry, 0)
    await agent.link.aclose()
    agent.store.close()

    [batch] = _telemetry(tmp_path)
    assert batch.monitoring is None and batch.windows >= 3
    assert "the monitoring report failed" in caplog.text


@pytest.mark.anyio
async def test_a_stopped_app_reads_nothing_and_says_so_until_started_again(
    tmp_path: Path, hub_keys: HubKeys
) -> None:
    ref = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    agent = _agent(tmp_path)
    agent._loop = asyncio.get_running_loop()
    await agent.apply(DesiredState(version=3, bundle=ref, stopped=True))
    for _ in range(5):
        await agent._on_worker(agent._tick, 4096)
    stopped = (agent.hot.telemetry.windows, agent.hot.telemetry.raw_bytes, agent._reported())
    await agent.apply(DesiredState(version=4, bundle=ref))
    await agent._on_worker(agent._tick, 4096)
    await agent.link.aclose()
    agent.store.close()

    assert stopped[:2] == (0, 0) and stopped[2].status == "stopped"
    assert agent.hot.telemetry.windows >= 1 and agent._reported().status == "running"


@pytest.mark.anyio
async def test_with_its_edge_node_gone_a_device_answers_alone_and_counts_the_fallbacks(
    tmp_path: Path, hub_keys: HubKeys
) -> None:
    ref = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    # Threshold 0: every window is hard; nothing listens where the edge node should.
    policy = OffloadPolicy(model=ref, threshold=0.0, server=DEAD_HUB, timeout_s=0.5)
    store = LocalStore(tmp_path / "agent.db")
    store.set("desired", DesiredState(version=2, bundle=ref, offload=policy).model_dump_json())
    store.close()
    agent = _agent(tmp_path)

    await _run_until(agent, lambda: agent.hot.telemetry.windows >= 8)
    batches = _telemetry(tmp_path)

    reports = [b.offload for b in batches if b.offload is not None]
    windows = sum(b.windows for b in batches)
    assert sum(sum(b.predictions.values()) for b in batches) == windows >= 8
    assert reports and not any(r.answered for r in reports)
    # Every window went: each fell back, those still queued when the agent stopped too.
    assert sum(r.fallbacks for r in reports) == sum(r.windows for r in reports) == windows


@pytest.mark.anyio
async def test_windows_kept_for_federated_learning_stay_on_the_device_labelled(
    tmp_path: Path,
) -> None:
    agent = _agent(tmp_path)
    agent._loop = asyncio.get_running_loop()
    task = FederatedTask(keep=Collection(label="imbalance", dataset="fl"))
    await agent.apply(
        DesiredState(version=1, federated=task, fault=FaultInjection(kind="imbalance"))
    )
    for _ in range(4):
        await agent._on_worker(agent._tick, 4096)
    normal = FederatedTask(keep=Collection(label="normal", dataset="fl"))
    await agent.apply(DesiredState(version=2, federated=normal))
    for _ in range(2):
        await agent._on_worker(agent._tick, 4096)
    reported = agent._reported()
    await agent._loop.run_in_executor(agent._kept_writer, agent._write_kept)
    features = KeptWindows(tmp_path / "federated", "fl")
    with np.load(features.path) as held:
        x, labels = held["x"], held["labels"].tolist()
    await agent.apply(DesiredState(version=3, federated=task.model_copy(update={"rows": "raw"})))
    for _ in range(2):
        await agent._on_worker(agent._tick, 4096)
    await agent.apply(DesiredState(version=4))
    await agent._loop.run_in_executor(agent._kept_writer, agent._write_kept)
    await agent.link.aclose()
    agent.store.close()
    agent._kept_writer.shutdown()
    raw = KeptWindows(tmp_path / "federated", "fl")
    store = LocalStore(tmp_path / "agent.db")
    queued = set()
    while (item := store.peek()) is not None:
        queued.add(item.kind)
        store.ack(item)
    store.close()

    assert reported.federated is not None and reported.federated.kept == 12
    assert reported.status == "idle" and reported.federated.aggregator is None
    # A new label in the same dataset adds to its rows, none lost on the way.
    assert len(features) == 12 and labels == ["imbalance"] * 8 + ["normal"] * 4
    assert x.shape == (12, len(vibration_spec().features))
    # Raw rows are another spec's: they replace the features, 2048 samples of each channel.
    with np.load(raw.path) as held:
        assert held["x"].shape == (4, len(agent.source.channels) * 2048)
    assert agent.hot.keep_label is None and agent._reported().federated is None
    assert "samples" not in queued


@pytest.mark.anyio
async def test_the_federated_client_runs_once_windows_are_kept_and_stops_when_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgestack.federated

    started: list[tuple[str, Path, subprocess.Popen[bytes]]] = []

    def start(superlink: str, windows: Path, workdir: Path, *, name: str) -> object:
        process = subprocess.Popen(["sleep", "30"], start_new_session=True)
        started.append((superlink, windows, process))
        return edgestack.federated.Node(process, workdir / f"{name}.log")

    monkeypatch.setattr(edgestack.federated, "start_client", start)
    agent = _agent(tmp_path)
    agent._loop = asyncio.get_running_loop()
    keep = Collection(label="normal", dataset="fl")
    await agent.apply(
        DesiredState(version=1, federated=FederatedTask(aggregator="127.0.0.1:9", dataset="fl"))
    )
    await asyncio.sleep(0.2)
    before_rows = len(started)
    await agent.apply(
        DesiredState(
            version=2,
            federated=FederatedTask(keep=keep, aggregator="127.0.0.1:9", dataset="fl"),
        )
    )
    for _ in range(50):
        await agent._on_worker(agent._tick, 4096)
        if started:
            break
    first = agent._reported().federated
    await agent.apply(
        DesiredState(
            version=3,
            federated=FederatedTask(keep=keep, aggregator="127.0.0.2:9", dataset="fl"),
        )
    )
    for _ in range(50):
        await asyncio.sleep(0.05)
        if len(started) == 2:
            break
    await agent.apply(DesiredState(version=4))
    await agent.link.aclose()
    agent.store.close()
    agent._kept_writer.shutdown()

    assert before_rows == 0  # no client before the dataset has rows
    assert [(s[0], s[1].name) for s in started] == [
        ("127.0.0.1:9", KeptWindows.windows_file(tmp_path, "fl").name),
        ("127.0.0.2:9", KeptWindows.windows_file(tmp_path, "fl").name),
    ]
    assert all(s[2].poll() is not None for s in started)  # each stopped when its field changed
    assert first is not None and first.aggregator == "127.0.0.1:9" and first.client_starts == 1
    assert agent._reported().federated is None
