"""Monitoring of the running model in the hot path: what a telemetry cut reports of it."""

import numpy as np
import pytest
from pydantic import ValidationError

from bundles import random_bundle
from edgestack.agent import AgentSettings
from edgestack.agent.hotpath import HotPath, LoadedModel
from edgestack.agent.monitor import ModelMonitor
from edgestack.bundle import Bundle, Reference, digest
from edgestack.monitoring import reference
from edgestack.processing import FeaturePipeline, vibration_spec
from edgestack.protocol import BundleRef, MonitorReport
from edgestack.sensing import MotorSimulator

SPEC = vibration_spec(rate_hz=MotorSimulator(seed=0).rate_hz)
WINDOWS = 60


def _motor() -> MotorSimulator:
    """The same normal motor every time: a simulated machine's regime and temperature wander,
    so only its own stream is free of drift against a reference taken from it."""
    return MotorSimulator(seed=3, start=0.0)


def _model(seed: int, *, with_reference: bool) -> LoadedModel:
    """A random model on the motor's features; its reference, if any, from `_motor`'s first
    `WINDOWS` windows."""
    bundle = random_bundle(seed, version=seed, spec=SPEC)
    if with_reference:
        rows = FeaturePipeline(SPEC).push(_motor().read(SPEC.window * WINDOWS))
        manifest = bundle.manifest.model_copy(update={"reference": reference(rows)})
        bundle = Bundle(manifest, bundle.model)
    ref = BundleRef(name="m", version=seed, digest=digest(bundle.pack()))
    return LoadedModel.load(bundle, ref, MotorSimulator(seed=0))


@pytest.fixture(scope="module")
def watched() -> LoadedModel:
    return _model(1, with_reference=True)


def _run(hot: HotPath, windows: int) -> None:
    for _ in range(windows):
        hot.step(SPEC.window)


def _report(hot: HotPath) -> MonitorReport:
    assert hot.monitor is not None
    return hot.monitor.take()


def test_a_stream_like_the_training_rows_shows_no_drift(watched: LoadedModel) -> None:
    hot = HotPath(_motor(), SPEC)
    hot.use_model(watched)

    _run(hot, WINDOWS)
    report = _report(hot)

    assert report.drift is not None
    assert [sum(c) for c in report.drift.counts] == [WINDOWS] * len(SPEC.features)
    assert max(p for p in report.drift.psi if p is not None) < 0.01
    assert sum(report.confidence) == WINDOWS
    assert report.p50_ms is not None and report.p50_ms <= report.p99_ms  # type: ignore[operator]
    assert report.throughput > 0 and report.rss_bytes > 0
    assert sum(report.latency.values()) == WINDOWS  # one model call per window here
    assert report.anomaly_max is not None and report.anomaly_mean is not None
    assert set(report.changes) == {"confidence", "anomaly"}


def test_a_shifted_stream_shows_high_psi_and_anomaly_scores(watched: LoadedModel) -> None:
    source = _motor()
    source.inject("imbalance", severity=3.0)  # the reference's own stretch, off balance
    hot = HotPath(source, SPEC)
    hot.use_model(watched)

    _run(hot, WINDOWS)
    report = _report(hot)

    assert report.drift is not None
    assert max(p for p in report.drift.psi if p is not None) > 1.0
    assert max(k for k in report.drift.ks if k is not None) > 0.5


def test_a_fault_midway_raises_the_anomaly_score_and_its_change_detector(
    watched: LoadedModel,
) -> None:
    source = _motor()
    hot = HotPath(source, SPEC)
    hot.use_model(watched)
    _run(hot, 110)  # past the detectors' warm-up
    before = _report(hot)

    source.inject("imbalance", severity=3.0)
    _run(hot, 30)
    after = _report(hot)

    assert before.changes["anomaly"] == 0
    assert before.anomaly_max is not None and after.anomaly_max is not None
    assert after.anomaly_max > 3 * before.anomaly_max
    assert after.changes["anomaly"] >= 1


def test_a_swap_starts_the_monitor_afresh(watched: LoadedModel) -> None:
    plain = _model(2, with_reference=False)
    hot = HotPath(_motor(), SPEC)
    hot.use_model(watched)
    _run(hot, 5)
    first = hot.monitor

    hot.use_model(plain)
    _run(hot, 3)
    report = _report(hot)

    assert hot.monitor is not first and hot.monitor is not None
    assert hot.monitor.ref == plain.ref
    assert sum(report.confidence) == 3
    assert report.drift is None  # the new bundle carries no reference


def test_a_model_given_up_hands_the_monitor_to_the_one_before(watched: LoadedModel) -> None:
    failing = _model(2, with_reference=False)
    hot = HotPath(_motor(), SPEC)
    hot.use_model(watched)
    hot.use_model(failing)

    def fail(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise RuntimeError("broken model")

    failing.predictor.predict = fail  # type: ignore[method-assign]
    while hot.model is failing:
        hot.step(SPEC.window)

    assert hot.monitor is not None and hot.monitor.ref == watched.ref


def test_monitoring_off_watches_nothing(watched: LoadedModel) -> None:
    hot = HotPath(_motor(), SPEC, monitoring=False)
    hot.use_model(watched)

    _run(hot, 3)

    assert hot.monitor is None
    assert sum(hot.telemetry.cut(1, 0, None).predictions.values()) == 3


def test_non_finite_rows_are_counted_and_left_out_of_the_sketch(watched: LoadedModel) -> None:
    monitor = ModelMonitor(watched.ref, watched.labels, watched.reference)
    rows = np.zeros((2, len(SPEC.features)), dtype=np.float32)
    rows[0, 3] = np.nan
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8]])

    monitor.add(1e-3, probabilities, rows, None)
    report = monitor.take()

    assert monitor.quality.take()[0] == {"drift_nonfinite": 1}
    assert report.drift is not None and sum(report.drift.counts[0]) == 1
    assert report.confidence[9] == 1 and report.confidence[8] == 1
    assert report.anomaly_max is None  # no windows given


def test_a_reference_too_big_for_the_wire_is_not_sketched(watched: LoadedModel) -> None:
    bins = 100  # a DriftReport holds at most 64 per feature
    edges = [[float(i) for i in range(bins - 1)]] * len(SPEC.features)
    shares = [[1 / bins] * bins] * len(SPEC.features)
    huge = Reference(rows=1000, edges=edges, shares=shares)
    monitor = ModelMonitor(watched.ref, watched.labels, huge)

    monitor.add(1e-3, np.array([[0.9, 0.1]]), np.zeros((1, len(SPEC.features))), None)

    assert monitor.take().drift is None


def test_an_unknown_detector_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="known: adwin, page_hinkley"):
        AgentSettings(enrol_token="t", device_id="edge-1", detector="cusum")
