"""source -> features -> model -> rules -> events, a chunk at a time, never touching the network.

A bundle is checked before it may run: its pipeline is built, its feature width matched
against the model's input and a dry window of silence sent through both. A step, an
extractor or a model that raises later is counted, never allowed to stop the agent; after
`FAILURE_LIMIT` failing chunks in a row the hot path gives the model up and runs the one
before it again.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from edgestack.agent.joint import Offloader
from edgestack.agent.monitor import DEFAULT_DETECTOR, ModelMonitor
from edgestack.agent.recent import RecentWindows
from edgestack.agent.rules import AlarmRule
from edgestack.agent.telemetry import TelemetryWindow
from edgestack.bundle import Bundle, InputSpec, Reference, SplitPlan
from edgestack.predictor import OnnxPredictor
from edgestack.processing import FeaturePipeline, silence, with_extractors
from edgestack.protocol import BundleRef, DataSample, Event, RuleParams
from edgestack.sensing import Chunk, Quality, Source
from edgestack.serving import rows_kind

if TYPE_CHECKING:  # the shadow runs a `LoadedModel`: its module imports this one
    from edgestack.agent.shadow import Shadow

__all__ = ["FAILURE_LIMIT", "HotPath", "LoadedModel", "StepOutput"]

FAILURE_LIMIT = 5  # failing chunks in a row before a model is given up


@dataclass(frozen=True)
class LoadedModel:
    ref: BundleRef
    labels: list[str]
    predictor: OnnxPredictor
    spec: InputSpec
    reference: Reference | None = None
    """The training rows' statistics that drift is measured against, when the bundle has them."""
    split: SplitPlan | None = None
    """A split net's head: its answers are its exit's, and the windows the exit is not sure of
    go on to the tail as the head's intermediate tensor."""

    @classmethod
    def load(
        cls, bundle: Bundle, ref: BundleRef, source: Source, frame: tuple[int, ...] = ()
    ) -> "LoadedModel":
        """Load a verified bundle; refuse it, saying why, if this device cannot feed it.
        `frame` is the shape of one of `source`'s samples (a camera's picture)."""
        spec = bundle.manifest.input
        if bundle.manifest.target != "onnx":
            raise ValueError(
                f"bundle {ref.name} v{ref.version} is {bundle.manifest.target.upper()} source "
                "for a microcontroller's firmware; this agent runs ONNX models: deploy an "
                "ONNX version of the model to it"
            )
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
        predictor = OnnxPredictor(bundle.model, bundle.manifest.labels)
        if predictor.n_features is not None and predictor.n_features != len(spec.features):
            raise ValueError(
                f"bundle {ref.name} v{ref.version}: its input spec gives {len(spec.features)} "
                f"features, its model takes {predictor.n_features}; repack it with the spec "
                "the model was trained on"
            )
        # A dry window through a fresh pipeline and the model, before either may run.
        rows = FeaturePipeline(spec).push(silence(spec, source.units, frame))
        predictor.predict(rows)
        split = bundle.manifest.split if predictor.has_tensor else None
        return cls(ref, bundle.manifest.labels, predictor, spec, bundle.manifest.reference, split)


@dataclass(slots=True)  # one or two a chunk: slots make them cheaper to build
class StepOutput:
    events: list[Event] = field(default_factory=list)
    samples: list[DataSample] = field(default_factory=list)
    windows: int = 0
    """How many windows this chunk completed."""
    labels: list[str] = field(default_factory=list)
    """The model's label for each of them, when a model ran."""
    confidences: np.ndarray | None = None
    """The probability of each of those labels."""
    latency_ms: float = 0.0
    """The model's time per window."""
    failure: str | None = None
    """Why this chunk's steps, extractors or model raised, when they did."""
    given_up: LoadedModel | None = None
    """The model this chunk gave up after `FAILURE_LIMIT` failures in a row."""
    kept: np.ndarray | None = None
    """The rows of this chunk's windows to keep on the device, while `HotPath.keep_label` is
    set: their features, or their raw samples (`HotPath.kept_spec` says which)."""


class HotPath:
    """Not thread-safe: one thread steps it and makes every change to it, so a change always
    falls between two chunks. With `monitoring`, each model that runs is watched by a
    `ModelMonitor` of its own, its change detectors built from `detector`; `monitor` is None
    while no model runs or monitoring is off."""

    def __init__(
        self,
        source: Source,
        default_spec: InputSpec,
        *,
        monitoring: bool = True,
        detector: str = DEFAULT_DETECTOR,
    ) -> None:
        self.source = source
        self.monitoring = monitoring
        self.detector = detector
        self.monitor: ModelMonitor | None = None
        self.telemetry = TelemetryWindow()
        self.recent = RecentWindows()
        # The windows the offload gate found hard, as candidates for retraining.
        self.hard = RecentWindows()
        self.rule = AlarmRule(RuleParams())
        self.collect_label: str | None = None
        # Federated learning: windows labelled and kept on the device, never sent.
        self.keep_label: str | None = None
        self._raw: FeaturePipeline | None = None
        self.model: LoadedModel | None = None
        self.previous: LoadedModel | None = None
        # A rollout's candidate: run after `model` on the same rows, acting on nothing.
        self.shadow: Shadow | None = None
        # Joint inference: hard windows go to a server, queued; None leaves the path as it was.
        self.offload: Offloader | None = None
        self.failures = 0
        self._default_spec = default_spec
        self._features = FeaturePipeline(default_spec)

    @property
    def spec(self) -> InputSpec:
        return self.model.spec if self.model else self._default_spec

    @property
    def kept_spec(self) -> InputSpec:
        """The spec of the rows kept: the running one's, or its raw windows' (`keep(raw=True)`)."""
        return self._raw.spec if self._raw is not None else self.spec

    def keep(self, label: str | None, *, raw: bool = False) -> None:
        """Label every window `label` from the next chunk on and hand its row out to keep
        (`StepOutput.kept`): its features, or with `raw` its samples; None keeps none."""
        self.keep_label = label
        self._raw = FeaturePipeline(with_extractors(self.spec, ["raw"])) if raw and label else None
        self.restart_windows()

    def use_model(self, model: LoadedModel | None) -> None:
        """Run `model` from the next chunk on; the one running now becomes `previous`.

        Model and pipeline change together. A model of the same input spec keeps the
        pipeline and its partial window, so no window is lost or counted twice; another
        spec starts a fresh pipeline, as windows of two specs cannot be joined."""
        if model is self.model:
            return
        same_spec = self.spec == (model.spec if model else self._default_spec)
        self.previous, self.model = self.model, model
        self._watch()
        self.failures = 0
        self.recent.clear()
        self.hard.clear()
        if not same_spec:
            self.restart_windows()

    def _watch(self) -> None:
        """A fresh monitor for the model that runs now: its labels, reference and levels."""
        model = self.model
        self.monitor = (
            ModelMonitor(model.ref, model.labels, model.reference, self.detector)
            if self.monitoring and model is not None
            else None
        )

    def restart_windows(self) -> None:
        """Drop the partial window, so no window mixes samples from before and after a change."""
        self._features = FeaturePipeline(self.spec)
        if self._raw is not None:
            self._raw = FeaturePipeline(with_extractors(self.spec, ["raw"]))

    def step(self, samples: int) -> StepOutput:
        """Read `samples` from the source and take them through features, model and rules."""
        try:
            chunk = self.source.read(samples)
        except Exception as exc:  # a source that fails (a port unplugged) must not stop the device
            # Counted as the device's bad input, with the reason: the model is not to blame.
            with self.telemetry.lock:
                self.telemetry.add_bad_input(_failed_read(exc))
            return StepOutput()
        try:
            out = self._run(chunk)
        except Exception as exc:  # a bundle's own code must never stop the device
            out = StepOutput(failure=f"{type(exc).__name__}: {exc}")
            # A step that raised may have kept half its state: start its windows afresh.
            self.restart_windows()
            self.failures += 1
            if self.model is not None and self.failures >= FAILURE_LIMIT:
                out.given_up = self.model
                self.model, self.previous = self.previous, None
                self._watch()
                self.failures = 0
                self.restart_windows()
        telemetry = self.telemetry
        # Counted at the end, all at once: a cut from another thread never splits a chunk.
        with telemetry.lock:
            telemetry.add_chunk(chunk.nbytes, out.windows, failed=out.failure is not None)
            if out.confidences is not None:
                telemetry.add_predictions(out.labels, out.confidences, out.latency_ms)
            telemetry.add_bad_input(self.source.quality)
            telemetry.add_bad_input(self._features.quality)
            if self.monitor is not None:
                telemetry.add_bad_input(self.monitor.quality)
        return out

    def _run(self, chunk: Chunk) -> StepOutput:
        features = self._features.push(chunk)
        # Pushed on every chunk, so its windows stay those of the features.
        raw = self._raw.push(chunk) if self._raw is not None else None
        if not len(features):
            return StepOutput()
        out = StepOutput(windows=len(features))
        if self.keep_label is not None:
            rows = features if raw is None else raw
            out.kept = rows[np.isfinite(rows).all(axis=1)]
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
        model = self.model
        if model is not None:
            started = time.perf_counter()
            if model.split is None:
                indices, probabilities = model.predictor.predict(features)
            else:
                indices, probabilities, tensor = model.predictor.predict_head(features)
            elapsed = time.perf_counter() - started
            out.latency_ms = elapsed * 1000 / len(features)
            if self.monitor is not None:
                self.monitor.add(elapsed, probabilities, features, self._features.windows)
            out.labels = [model.labels[i] for i in indices.tolist()]
            out.confidences = probabilities.max(axis=1)  # the chosen label's probability
            out.events = self.rule.update(out.labels, out.confidences, now, model.ref.digest)
            self.recent.add(now, features, out.labels, out.confidences)
            if self.offload is not None:
                if model.split is not None:
                    hard = self.offload.offer_tensors(tensor, probabilities, model.split)
                else:
                    hard = self.offload.offer(features, probabilities, rows_kind(model.spec))
                if hard.any():
                    labels = [label for label, h in zip(out.labels, hard, strict=True) if h]
                    self.hard.add(now, features[hard], labels, out.confidences[hard])
            if self.shadow is not None:
                self.shadow.run(features, out.labels)
        # Only a window that went all the way through ends a run of failures.
        self.failures = 0
        return out


def _failed_read(exc: Exception) -> Quality:
    failed = Quality()
    failed.count("source_error", example=f"{type(exc).__name__}: {exc}")
    return failed
