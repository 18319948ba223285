"""The app spec: one validated YAML file naming an app's sources, steps, model, rules and sinks.

The same spec drives feature extraction for training and the agent's hot path, so a model
sees on the device exactly the features it was trained on. A wrong spec fails at load, with
the path of the bad field and what was expected:

    app = load_app_spec(Path("vibration.yaml"))
    sources = app.build_sources()
    spec = app.input_spec(sources)       # the InputSpec a bundle trained on this app carries

    # vibration.yaml
    name: vibration
    sources:
      - {kind: motor, params: {seed: 1}}
    window: 2048
    hop: 2048
    steps:
      - {kind: clean, params: {policy: interpolate}}
    extractors:
      - {kind: time_stats, channels: [accel_x, accel_y, accel_z]}
      - {kind: mean, channels: [temperature]}
    model: {name: motor-faults}
    rules: {trigger_windows: 4}
    sinks:
      - {kind: jsonl, params: {path: events.jsonl}}
"""

import math
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgestack.bundle import FeatureSpec, InputSpec, Name, StageSpec
from edgestack.processing import (
    EXTRACTORS,
    STEPS,
    TRANSFORMS,
    AlignedSource,
    FeaturePipeline,
    make_spec,
    silence,
    vibration_spec,
)
from edgestack.protocol import RuleParams
from edgestack.registry import Registry, RegistryError, field_path
from edgestack.sensing import SOURCES, Source
from edgestack.sinks import SINKS, Sink

__all__ = [
    "MAX_APP_BYTES",
    "AppSpec",
    "AppSpecError",
    "ModelSpec",
    "load_app_spec",
    "load_input_spec",
    "motor_app",
    "parse_app_spec",
    "parse_input_spec",
]


T = TypeVar("T")

MAX_APP_BYTES = 256 * 1024**2
"""What two windows and a hop, or one second, of an app's input may take in memory; an app
spec asking for more is refused at load rather than exhausting the device."""
# Windows are cut from float64 copies in the worst case.
_SAMPLE_BYTES = 8


class AppSpecError(ValueError):
    """A spec that cannot run: the message starts with the file and the path of the bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """The registered model this app runs, and the row transforms training fits before it."""

    name: Name
    preprocess: list[StageSpec] = Field(default_factory=list)


class AppSpec(_Strict):
    version: Literal[1] = 1
    name: Name
    sources: list[StageSpec] = Field(min_length=1)
    align_hz: float | None = Field(
        default=None, gt=0, description="common rate of several sources, aligned by timestamp"
    )
    window: int = Field(ge=1)
    hop: int = Field(ge=1)
    steps: list[StageSpec] = Field(default_factory=list)
    extractors: list[FeatureSpec] = Field(min_length=1)
    model: ModelSpec | None = None
    rules: RuleParams = RuleParams()
    sinks: list[StageSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _registered(self) -> "AppSpec":
        if len(self.sources) > 1 and self.align_hz is None:
            raise ValueError(
                f"align_hz: {len(self.sources)} sources need a common rate to be aligned at; "
                "set align_hz"
            )
        checks: list[tuple[Registry[Any], str, list[StageSpec]]] = [
            (SOURCES, "sources", self.sources),
            (STEPS, "steps", self.steps),
            (EXTRACTORS, "extractors", list(self.extractors)),
            (TRANSFORMS, "model.preprocess", self.model.preprocess if self.model else []),
            (SINKS, "sinks", self.sinks),
        ]
        for registry, field, stages in checks:
            for i, stage in enumerate(stages):
                try:
                    registry.validate(stage.kind, stage.params, where=f"{field}[{i}]")
                except RegistryError as exc:
                    raise ValueError(str(exc)) from None
        return self

    def build_sources(self) -> list[Source]:
        """The app's sources, started; `AppSpecError` names the one that cannot start."""
        return [
            _build(SOURCES, stage, self.name, f"sources[{i}]")
            for i, stage in enumerate(self.sources)
        ]

    def source(self) -> Source:
        """The app's input as one source: the only one, or all of them aligned at `align_hz`."""
        sources = self.build_sources()
        if len(sources) == 1:
            return sources[0]
        assert self.align_hz is not None  # the validator asks for it
        try:
            return AlignedSource(sources, self.align_hz)
        except ValueError as exc:
            for source in sources:
                source.close()
            raise AppSpecError(f"{self.name}: sources: {exc}") from None

    def input_spec(self, source: Source) -> InputSpec:
        """The InputSpec of this app's features for `source`'s channels and rate.

        Some parameters can only be checked against the stream (a filter's cutoff against the
        source's Nyquist rate, a resampling ratio): a few windows of silence go through the
        pipeline once here, so such a mistake stops the app at load, not on the device later.
        So does a window, a hop or a rate that would take more than `MAX_APP_BYTES`.
        """
        try:
            spec = make_spec(
                list(source.channels),
                rate_hz=source.rate_hz,
                window=self.window,
                hop=self.hop,
                steps=self.steps,
                extractors=self.extractors,
            )
            frame = source.read(0).frame
            self._check_memory(source, frame)
            FeaturePipeline(spec).push(silence(spec, source.units, frame))
        except ValueError as exc:
            raise AppSpecError(f"{self.name}: {exc}") from None
        return spec

    def _check_memory(self, source: Source, frame: tuple[int, ...]) -> None:
        channels = len(source.channels)
        sample_bytes = channels * math.prod(frame) * _SAMPLE_BYTES
        what = f"{channels} channel{'s' * (channels != 1)}" + (
            f" of {'x'.join(map(str, frame))} frames" if frame else ""
        )
        # The windows being cut and the hop between them, as the dry run below holds them.
        held = (2 * self.window + self.hop) * sample_bytes
        if held > MAX_APP_BYTES:
            field = "window" if 2 * self.window >= self.hop else "hop"
            raise ValueError(
                f"{field}: windows of {self.window} samples every {self.hop} of {what} would "
                f"take {_size(held)}, more than the {_size(MAX_APP_BYTES)} an app may hold; "
                f"use a shorter {field}"
            )
        if source.rate_hz * sample_bytes > MAX_APP_BYTES:
            field = "align_hz" if len(self.sources) > 1 else "sources[0].params.rate_hz"
            raise ValueError(
                f"{field}: {source.rate_hz:g} Hz of {what} would take "
                f"{_size(source.rate_hz * sample_bytes)} a second, more than the "
                f"{_size(MAX_APP_BYTES)} an app may hold; use a lower rate"
            )

    def build_sinks(self) -> list[Sink]:
        """The app's sinks, opened; `AppSpecError` names the one that cannot open (a path
        that cannot be written), closing those opened before it."""
        sinks: list[Sink] = []
        try:
            for i, stage in enumerate(self.sinks):
                sinks.append(_build(SINKS, stage, self.name, f"sinks[{i}]"))
        except AppSpecError:
            for sink in sinks:
                sink.close()
            raise
        return sinks


def _build(registry: Registry[T], stage: StageSpec, app: str, where: str) -> T:
    """`stage` built; what stops it (a port, a path) as an `AppSpecError` naming `where`."""
    try:
        return registry.build(stage.kind, stage.params)
    except (OSError, ValueError) as exc:
        raise AppSpecError(f"{app}: {where}: {exc}") from None


def _size(n: float) -> str:
    return f"{n / 1024**3:.3g} GiB" if n >= 1024**3 else f"{n / 1024**2:.3g} MiB"


def parse_app_spec(text: str, origin: str = "app spec") -> AppSpec:
    """Validate YAML text; `AppSpecError` names `origin`, the bad field and what was expected."""
    raw = _yaml(text, origin)
    if not isinstance(raw, dict):
        raise AppSpecError(
            f"{origin}: expected a mapping with name, sources, window, hop, extractors; "
            f"got {type(raw).__name__}"
        )
    try:
        return AppSpec.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise AppSpecError(f"{origin}: " + "; ".join(lines)) from None


def _yaml(text: str, origin: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        # One line: a reader error spreads itself over several.
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise AppSpecError(f"{origin}:{where} not valid YAML: {problem}") from None


def parse_input_spec(text: str, origin: str = "spec") -> InputSpec:
    """The `InputSpec` in YAML or JSON text (JSON is YAML): an input spec, whose `features`
    are derived from its extractors when left out, or an app spec, whose sources are started
    to learn their channels and rate. `AppSpecError` names `origin` and the bad field."""
    raw = _yaml(text, origin)
    if not isinstance(raw, dict):
        raise AppSpecError(
            f"{origin}: expected a mapping with sensors, rate_hz, window, hop, extractors "
            f"(or an app spec's sources); got {type(raw).__name__}"
        )
    if "sources" in raw:
        app = parse_app_spec(text, origin)
        source = app.source()
        try:
            return app.input_spec(source)
        finally:
            source.close()
    given = raw.get("features")
    try:
        # Validated with the features it names, or a stand-in, so every other field's error
        # names that field; the names themselves come from the extractors.
        checked = InputSpec.model_validate({"features": ["-"]} | raw)
        spec = make_spec(
            checked.sensors,
            checked.rate_hz,
            checked.window,
            checked.hop,
            checked.steps,
            checked.extractors,
        )
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise AppSpecError(f"{origin}: " + "; ".join(lines)) from None
    except ValueError as exc:
        raise AppSpecError(f"{origin}: {exc}") from None
    if given is not None and given != spec.features:
        raise AppSpecError(
            f"{origin}: features: {len(given)} names that are not the {len(spec.features)} "
            f"the extractors give, which start {spec.features[:3]}; leave features out and "
            "they are derived from the extractors"
        )
    return spec


def load_input_spec(path: Path) -> InputSpec:
    """The `InputSpec` in a JSON or YAML file, as `parse_input_spec` reads it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AppSpecError(f"{path}: cannot read the spec: {exc}") from None
    return parse_input_spec(text, origin=str(path))


def load_app_spec(path: Path) -> AppSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AppSpecError(f"{path}: cannot read the app spec: {exc.strerror}") from None
    return parse_app_spec(text, origin=str(path))


def _describe(error: Any) -> str:
    where = field_path(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not where:
        return message
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field; remove it or check its spelling"
    return f"{where}: {message}"


def motor_app(seed: int) -> AppSpec:
    """The built-in app: the simulated motor `seed`, with the vibration features."""
    spec = vibration_spec()
    return AppSpec(
        name="motor",
        sources=[StageSpec(kind="motor", params={"seed": seed})],
        window=spec.window,
        hop=spec.hop,
        steps=spec.steps,
        extractors=spec.extractors,
    )
