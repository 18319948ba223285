import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from test_runtime import _Artifacts, _bundle, _installed

from bundles import random_bundle
from edgestack.agent import Agent, AgentSettings
from edgestack.agent.hotpath import HotPath, LoadedModel
from edgestack.agent.shadow import Shadow
from edgestack.bundle import digest
from edgestack.hub.signing import HubKeys
from edgestack.monitoring import reference
from edgestack.processing import vibration_spec
from edgestack.protocol import BundleRef, DesiredState, EventBatch, TelemetryBatch
from edgestack.sensing import MotorSimulator

LABELS = ("normal", "imbalance", "bearing_wear")


def _model(seed: int) -> LoadedModel:
    spec = vibration_spec(rate_hz=MotorSimulator(seed=0).rate_hz)
    bundle = random_bundle(seed, version=seed, spec=spec, labels=LABELS)
    ref = BundleRef(name="m", version=seed, digest=digest(bundle.pack()))
    return LoadedModel.load(bundle, ref, MotorSimulator(seed=0))


def _hot(main: LoadedModel) -> HotPath:
    hot = HotPath(MotorSimulator(seed=1), main.spec)
    hot.use_model(main)
    return hot


def test_a_shadow_of_the_same_model_agrees_on_every_window_the_running_model_saw() -> None:
    main = _model(1)
    hot = _hot(main)
    hot.shadow = Shadow(_model(1), None)

    for _ in range(4):
        hot.step(4000)
    report = hot.shadow.take()
    batch = hot.telemetry.cut(seq=1, uplink_bytes=0, bundle_digest=None)

    assert report.windows == batch.windows > 0
    assert report.agreed == report.windows
    assert report.failures == 0
    assert report.p99_ms is not None and sum(report.latency.values()) >= 1
    assert report.mean_confidence is not None and 0 < report.mean_confidence <= 1
    assert report.drift_psi is None
    assert hot.shadow.take().windows == 0


def test_another_model_in_shadow_counts_where_it_disagrees() -> None:
    hot = _hot(_model(1))
    candidate = _model(7)
    hot.shadow = Shadow(candidate, None)
    rows = np.random.default_rng(0).normal(size=(200, len(candidate.spec.features)))
    mine = [candidate.labels[i] for i in candidate.predictor.predict(rows)[0].tolist()]
    theirs = ["normal"] * 200

    hot.shadow.run(rows, theirs)
    report = hot.shadow.take()

    assert report.bundle == candidate.ref
    assert report.windows == 200
    assert report.agreed == sum(m == "normal" for m in mine)
    assert report.predictions == dict(Counter(mine))  # what it said, for its accuracy on feedback


def test_a_shadow_that_raises_is_counted_and_the_running_model_goes_on() -> None:
    hot = _hot(_model(1))
    candidate = _model(2)

    def broken(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise RuntimeError("candidate bug")

    object.__setattr__(candidate, "predictor", type("Broken", (), {"predict": broken})())
    hot.shadow = Shadow(candidate, None)

    outs = [hot.step(4000) for _ in range(4)]
    report = hot.shadow.take()

    assert all(out.failure is None for out in outs)
    assert sum(len(out.labels) for out in outs) > 0
    assert hot.model is not None and hot.model.ref.version == 1
    assert hot.failures == 0
    assert report.failures == sum(1 for out in outs if out.windows)
    assert report.windows == 0


def test_a_shadow_measures_drift_against_its_own_reference() -> None:
    main = _model(1)
    rows = np.random.default_rng(3).normal(size=(500, len(main.spec.features)))
    shadow = Shadow(_model(2), reference(rows))
    labels = [main.labels[i] for i in main.predictor.predict(rows + 5)[0].tolist()]

    shadow.run(rows + 5, labels)
    report = shadow.take()
    shifted = report.drift_psi
    shadow.run(rows, [main.labels[i] for i in main.predictor.predict(rows)[0].tolist()])
    same = shadow.take().drift_psi

    assert shifted is not None and same is not None
    assert shifted > 1 > 0.05 > same
    # The bins go up too, for the hub to add up over devices and intervals.
    assert report.drift is not None
    assert [sum(feature) for feature in report.drift.counts] == [500] * len(main.spec.features)


# -- the agent following desired.shadow ---------------------------------------


@pytest.fixture(scope="module")
def hub_keys(tmp_path_factory: pytest.TempPathFactory) -> HubKeys:
    return HubKeys(tmp_path_factory.mktemp("hub-keys"))


def _agent(data_dir: Path) -> Agent:
    settings = AgentSettings(
        hub_url="http://127.0.0.1:9", enrol_token="t", device_id="edge-1", data_dir=data_dir
    )
    return Agent(settings)


def _outbox(agent: Agent) -> tuple[list[TelemetryBatch], list[str]]:
    batches, kinds = [], []
    while (item := agent.store.peek()) is not None:
        body = gzip.decompress(item.body)
        if item.kind == "telemetry":
            batches.append(TelemetryBatch.model_validate_json(body))
        if item.kind == "events":
            kinds += [e.kind for e in EventBatch.model_validate_json(body).events]
        agent.store.ack(item)
    return batches, kinds


@pytest.mark.anyio
async def test_the_agent_runs_the_desired_shadow_reports_it_and_keeps_its_bundles(
    tmp_path: Path, hub_keys: HubKeys
) -> None:
    good = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    agent = _agent(tmp_path)
    await agent.apply(DesiredState(version=3, bundle=good))
    data = _bundle(2, seed=2, keys=hub_keys)
    candidate = BundleRef(name="m", version=2, digest=digest(data))
    agent.link = _Artifacts({candidate.digest: data}).link()

    await agent.apply(DesiredState(version=4, bundle=good, shadow=candidate, keep=[good]))
    for _ in range(3):
        agent.hot.step(4000)
    agent._cut_telemetry(0)
    batches, kinds = _outbox(agent)
    reported = agent._reported()
    await agent.apply(DesiredState(version=5, bundle=good))

    assert reported.shadow == candidate
    assert reported.bundle == good
    assert reported.status == "running"
    [batch] = batches
    assert batch.shadow is not None and batch.shadow.bundle == candidate
    assert batch.shadow.windows == batch.windows > 0
    assert kinds == ["model_loaded"]
    assert agent.hot.shadow is None
    assert agent._reported().shadow is None
    await agent.link.aclose()
    agent.store.close()


@pytest.mark.anyio
async def test_a_shadow_that_cannot_run_is_reported_and_the_bundle_keeps_running(
    tmp_path: Path, hub_keys: HubKeys
) -> None:
    good = _installed(tmp_path, _bundle(1, seed=1, keys=hub_keys), version=1, keys=hub_keys)
    agent = _agent(tmp_path)
    await agent.apply(DesiredState(version=3, bundle=good))
    data = _bundle(2, seed=2, keys=hub_keys, width=3)
    candidate = BundleRef(name="m", version=2, digest=digest(data))
    agent.link = _Artifacts({candidate.digest: data}).link()

    await agent.apply(DesiredState(version=4, bundle=good, shadow=candidate, keep=[good]))

    assert agent.hot.shadow is None
    assert agent.hot.model is not None and agent.hot.model.ref == good
    assert agent._reported().status == "running"
    _, kinds = _outbox(agent)
    assert kinds == ["model_loaded", "load_failed"]
    await agent.link.aclose()
    agent.store.close()


def test_pruning_keeps_the_bundles_a_rollout_asks_to_keep(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    kept = BundleRef(name="m", version=1, digest="a" * 64)
    agent.applied = DesiredState(version=1, keep=[kept])

    assert kept.digest in agent._rollback_digests()
    agent.store.close()
