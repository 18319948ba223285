"""Chunks in, feature rows out: one path from samples to model input, on devices and in training."""

import numpy as np

from edgestack.bundle import FeatureSpec, InputSpec
from edgestack.processing.features import extract, feature_names
from edgestack.processing.window import Windower
from edgestack.sensing import Chunk, MotorSimulator

__all__ = ["FeaturePipeline", "vibration_spec"]


class FeaturePipeline:
    """Windows and features as `spec` describes them, carried across chunks.

    pipeline = FeaturePipeline(vibration_spec())
    rows = pipeline.push(motor.read(8000))   # (k, len(spec.features)) float32
    """

    def __init__(self, spec: InputSpec) -> None:
        expected = feature_names(spec.sensors)
        if spec.features != expected:
            raise ValueError(
                f"features: {len(spec.features)} names that are not what sensors "
                f"{spec.sensors} produce; set features to feature_names(sensors), "
                f"which starts {expected[:3]}"
            )
        self.spec = spec
        self._sensors = tuple(spec.sensors)
        self._windower = Windower(spec.window, spec.hop)

    def push(self, chunk: Chunk) -> np.ndarray:
        """Features of the windows this chunk completes, `(k, F)` float32, k >= 0."""
        if chunk.channels != self._sensors:
            raise ValueError(
                f"chunk channels {list(chunk.channels)} do not match sensors {self.spec.sensors}; "
                "read from a source with those channels, in that order"
            )
        if chunk.rate_hz != self.spec.rate_hz:
            raise ValueError(
                f"chunk rate {chunk.rate_hz} Hz does not match rate_hz {self.spec.rate_hz}; "
                "sample at the spec's rate"
            )
        windows = self._windower.push(chunk.data)
        return extract(windows, self._sensors, self.spec.rate_hz)

    def reset(self) -> None:
        """Drop the partial window, so no window mixes samples from before and after a change."""
        self._windower.reset()


def vibration_spec(rate_hz: float = 8000.0, window: int = 2048, hop: int = 2048) -> InputSpec:
    """The input spec for `MotorSimulator`'s channels, with every feature `extract` offers.

    Windows of a quarter second do not overlap by default: each costs the uplink its
    features when collected, and overlapping ones would double that for little new."""
    sensors = list(MotorSimulator.channels)
    return InputSpec(
        sensors=sensors,
        rate_hz=rate_hz,
        window=window,
        hop=hop,
        extractors=[FeatureSpec(kind="vibration")],
        features=feature_names(sensors),
    )
