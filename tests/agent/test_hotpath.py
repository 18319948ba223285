import numpy as np

from edgestack.agent.hotpath import HotPath
from edgestack.processing import vibration_spec
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
