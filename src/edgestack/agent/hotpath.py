"""source -> features -> model -> rules -> events, a chunk at a time, never touching the network."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from edgestack.agent.rules import AlarmRule
from edgestack.agent.telemetry import TelemetryWindow
from edgestack.bundle import Bundle, InputSpec
from edgestack.learning import OnnxPredictor
from edgestack.processing import FeaturePipeline
from edgestack.protocol import BundleRef, DataSample, Event, RuleParams
from edgestack.sensing import Quality, Source

__all__ = ["HotPath", "LoadedModel", "StepOutput"]


@dataclass(frozen=True)
class LoadedModel:
    ref: BundleRef
    labels: list[str]
    predictor: OnnxPredictor
    spec: InputSpec

    @classmethod
    def load(cls, bundle: Bundle, ref: BundleRef, source: Source) -> "LoadedModel":
        """Load a verified bundle; refuse it, saying why, if this device cannot feed it."""
        spec = bundle.manifest.input
        if tuple(spec.sensors) != tuple(source.channels):
            raise ValueError(
                f"bundle {ref.name} v{ref.version} expects sensors {spec.sensors}, "
                f"this device has {list(source.channels)}"
            )
        if spec.rate_hz != source.rate_hz:
            raise ValueError(
                f"bundle {ref.name} v{ref.version} expects {spec.rate_hz} Hz, "
                f"this device samples at {source.rate_hz} Hz"
            )
        return cls(
            ref, bundle.manifest.labels, OnnxPredictor(bundle.model, bundle.manifest.labels), spec
        )


@dataclass
class StepOutput:
    events: list[Event] = field(default_factory=list)
    samples: list[DataSample] = field(default_factory=list)


class HotPath:
    def __init__(self, source: Source, default_spec: InputSpec) -> None:
        self.source = source
        self.telemetry = TelemetryWindow()
        self.rule = AlarmRule(RuleParams())
        self.collect_label: str | None = None
        self.model: LoadedModel | None = None
        self._default_spec = default_spec
        self._features = FeaturePipeline(default_spec)

    @property
    def spec(self) -> InputSpec:
        return self.model.spec if self.model else self._default_spec

    def use_model(self, model: LoadedModel | None) -> None:
        self.model = model
        self.restart_windows()

    def restart_windows(self) -> None:
        """Drop the partial window, so no window mixes samples from before and after a change."""
        self._features = FeaturePipeline(self.spec)

    def step(self, samples: int) -> StepOutput:
        chunk = self.source.read(samples)
        self.telemetry.add_chunk(chunk.nbytes)
        features = self._features.push(chunk)
        for quality in (self.source.quality, self._features.quality):
            self.telemetry.add_bad_input(quality)
        out = StepOutput()
        if not len(features):
            return out
        self.telemetry.add_windows(len(features))
        now = datetime.now(UTC)
        if self.collect_label is not None:
            # The shortest text that reads back as the same float32: float64 reprs of float32
            # values would double the uplink with digits that carry nothing.
            finite = np.isfinite(features).all(axis=1)
            if not finite.all():
                # The hub takes finite features only; such windows are counted, not sent.
                dropped = Quality()
                dropped.count("nonfinite_features", int((~finite).sum()))
                self.telemetry.add_bad_input(dropped)
            rows = features[finite].astype(str).astype(np.float64).tolist()
            out.samples = [DataSample(at=now, label=self.collect_label, features=r) for r in rows]
        if self.model is not None:
            started = time.perf_counter()
            indices, probabilities = self.model.predictor.predict(features)
            latency_ms = (time.perf_counter() - started) * 1000 / len(features)
            labels = [self.model.labels[i] for i in indices.tolist()]
            confidences = probabilities[np.arange(len(indices)), indices]
            self.telemetry.add_predictions(labels, confidences, latency_ms)
            out.events = self.rule.update(labels, confidences, now, self.model.ref.digest)
        return out
