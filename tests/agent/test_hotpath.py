import asyncio

import numpy as np
import pytest

from bundles import random_bundle
from edgestack.agent.hotpath import FAILURE_LIMIT, HotPath, LoadedModel
from edgestack.agent.joint import Offloader
from edgestack.bundle import Bundle, digest
from edgestack.offload import calibrate, to_offload
from edgestack.processing import FeaturePipeline, vibration_spec
from edgestack.protocol import BundleRef, OffloadPolicy
from edgestack.sensing import Chunk, MotorSimulator


class _Glitchy(MotorSimulator):
    """The simulated motor, with a sensor that reports NaN for a few samples of every read."""

    def read(self, n: int) -> Chunk:
        chunk = super().read(n)
        chunk.data[1, :3] = np.nan
        self.quality.count("malformed_payload", example="x=;y=1")
        return chunk


def test_bad_samples_are_counted_per_reason_with_examples_and_windows_still_come() -> None:
    source = _Glitchy(seed=1)
    hot = HotPath(source, vibration_spec(rate_hz=source.rate_hz))

    for _ in range(10):
        hot.step(1000)
    batch = hot.telemetry.cut(seq=1, uplink_bytes=0, bundle_digest=None)

    assert batch.windows == 10_000 // 2048
    assert batch.bad_input == {"non_finite": 30, "malformed_payload": 10}
    reasons = {e.reason for e in batch.bad_examples}
    assert reasons == {"non_finite", "malformed_payload"}
    assert any("accel_y" in e.example for e in batch.bad_examples)
    assert hot.telemetry.cut(seq=2, uplink_bytes=0, bundle_digest=None).bad_input == {}


def _model(seed: int) -> LoadedModel:
    spec = vibration_spec(rate_hz=MotorSimulator(seed=0).rate_hz)
    bundle = random_bundle(seed, version=seed, spec=spec)
    data = bundle.pack()
    ref = BundleRef(name="m", version=seed, digest=digest(data))
    return LoadedModel.load(bundle, ref, MotorSimulator(seed=0))


def test_a_c_bundle_is_refused_saying_this_agent_runs_onnx() -> None:
    spec = vibration_spec(rate_hz=MotorSimulator(seed=0).rate_hz)
    onnx = random_bundle(0, spec=spec)
    c = Bundle(onnx.manifest.model_copy(update={"target": "c"}), b"C sources")
    ref = BundleRef(name="m", version=1, digest=digest(c.pack()))

    with pytest.raises(
        ValueError, match="is C source for a microcontroller's firmware; this agent"
    ):
        LoadedModel.load(c, ref, MotorSimulator(seed=0))


def test_a_swap_between_chunks_loses_no_window_and_counts_none_twice() -> None:
    first, second = _model(1), _model(2)
    hot = HotPath(MotorSimulator(seed=1), first.spec)
    hot.use_model(first)

    hot.step(4000)  # one window, and most of the next
    before = hot.telemetry.cut(seq=1, uplink_bytes=0, bundle_digest=None)
    hot.use_model(second)
    for _ in range(3):
        hot.step(2800)
    after = hot.telemetry.cut(seq=2, uplink_bytes=0, bundle_digest=None)

    # 12400 samples make 6 windows of 2048, whichever model each went to.
    assert before.windows + after.windows == 12_400 // 2048
    assert sum(before.predictions.values()) == before.windows == 1
    assert sum(after.predictions.values()) == after.windows
    assert hot.previous is first


def test_collected_windows_with_non_finite_features_are_counted_and_not_sent() -> None:
    source = MotorSimulator(seed=1)
    hot = HotPath(source, vibration_spec(rate_hz=source.rate_hz))
    hot.collect_label = "normal"
    width = len(hot.spec.features)
    windows = np.ones((3, width), dtype=np.float32)
    windows[1, 0] = np.inf
    hot._features.push = lambda chunk: windows  # type: ignore[method-assign]

    out = hot.step(100)

    assert [s.features for s in out.samples] == [[1.0] * width] * 2
    batch = hot.telemetry.cut(seq=1, uplink_bytes=0, bundle_digest=None)
    assert batch.bad_input == {"nonfinite_features": 1}
    assert batch.windows == 3


class _Unplugged(MotorSimulator):
    """A motor whose cable comes loose once, at its second read."""

    def __init__(self) -> None:
        super().__init__(seed=1)
        self.reads = 0

    def read(self, n: int) -> Chunk:
        self.reads += 1
        if self.reads == 2:
            raise OSError("the serial port went away")
        return super().read(n)


def test_a_source_that_raises_is_counted_as_bad_input_and_the_stream_goes_on() -> None:
    source = _Unplugged()
    hot = HotPath(source, vibration_spec(rate_hz=source.rate_hz))

    outputs = [hot.step(2048) for _ in range(4)]

    batch = hot.telemetry.cut(seq=1, uplink_bytes=0, bundle_digest=None)
    assert [o.windows for o in outputs] == [1, 0, 1, 1]
    assert batch.bad_input == {"source_error": 1}
    assert batch.bad_examples[0].example == "OSError: the serial port went away"
    assert (batch.chunks, batch.failed_chunks) == (3, 0)  # the failed read gave no chunk


def test_an_extractor_that_raises_at_run_time_is_counted_and_its_bundle_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = _model(1), _model(2)
    hot = HotPath(MotorSimulator(seed=1), first.spec)
    hot.use_model(first)
    hot.use_model(second)

    def broken(pipeline: FeaturePipeline, chunk: Chunk) -> np.ndarray:
        raise ZeroDivisionError("an extractor divided by zero")

    # On the class: a failure starts the windows afresh with a new pipeline.
    monkeypatch.setattr(FeaturePipeline, "push", broken)
    outputs = [hot.step(2048) for _ in range(FAILURE_LIMIT)]
    monkeypatch.undo()
    recovered = hot.step(2048)
    batch = hot.telemetry.cut(seq=1, uplink_bytes=0, bundle_digest=None)

    assert all(o.failure == "ZeroDivisionError: an extractor divided by zero" for o in outputs)
    assert [o.given_up for o in outputs] == [None] * (FAILURE_LIMIT - 1) + [second]
    assert hot.model is first
    assert recovered.failure is None and recovered.windows == 1
    assert (batch.chunks, batch.failed_chunks) == (FAILURE_LIMIT + 1, FAILURE_LIMIT)
    assert sum(batch.predictions.values()) == 1


def test_windows_the_offload_gate_finds_hard_are_kept_apart_for_retraining() -> None:
    model = _model(1)
    hot = HotPath(MotorSimulator(seed=1), model.spec)
    hot.use_model(model)
    for _ in range(4):
        hot.step(8192)
    before = [w.features for w in hot.recent.least_confident(1000)]
    seen = np.array(before, dtype=np.float32)
    # A margin gate, calibrated to find a third of these windows hard: not the least
    # confident third, necessarily.
    threshold = calibrate(model.predictor.predict(seen)[1], 1 / 3, "margin")
    policy = OffloadPolicy(model=model.ref, gate="margin", threshold=threshold, tier="cloud")

    async def send(body: bytes) -> bytes:
        raise AssertionError("the loop never runs: nothing is sent")

    loop = asyncio.new_event_loop()
    try:
        hot.offload = Offloader(policy, send, loop)
        for _ in range(8):
            hot.step(8192)
        queued = hot.offload.take().windows
    finally:
        loop.close()
    kept = hot.recent.least_confident(1000)
    rows = np.array([w.features for w in kept], dtype=np.float32)
    found = to_offload(model.predictor.predict(rows)[1], "margin", threshold)
    hard = {tuple(w.features) for w in hot.hard.least_confident(1000)}

    assert 0 < len(hard) == queued < len(kept)
    # Windows classified before the policy came are in no ring of hard ones.
    assert hard == {tuple(w.features) for w, h in zip(kept, found, strict=True) if h} - {
        tuple(row) for row in before
    }
    hot.use_model(_model(2))
    assert len(hot.hard) == 0
