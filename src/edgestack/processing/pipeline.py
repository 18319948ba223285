"""Chunks in, feature rows out: one path from samples to model input, on devices and in training."""

from collections.abc import Sequence

import numpy as np

from edgestack.bundle import FeatureSpec, InputSpec, StageSpec
from edgestack.processing.step import EXTRACTORS, STEPS, Extractor
from edgestack.processing.window import Windower
from edgestack.sensing import Chunk, MotorSimulator, Quality

__all__ = [
    "DEFAULT_EXTRACTORS",
    "FeaturePipeline",
    "extractors_of",
    "make_spec",
    "silence",
    "vibration_spec",
]

DEFAULT_EXTRACTORS = ("time_stats", "band_energies")
"""What `edgestack spec new` and training from raw windows extract when not told."""


class FeaturePipeline:
    """Steps, windows and extractors as `spec` describes them, state carried across chunks.

    Chunks go through `spec.steps` in order, are cut into windows of `spec.window` samples every
    `spec.hop`, and each extractor of `spec.extractors` adds its columns for its channels; the
    columns are `spec.features`. Bad samples the steps find are counted in `quality`.

        pipeline = FeaturePipeline(vibration_spec())
        rows = pipeline.push(motor.read(8000))   # (k, len(spec.features)) float32
    """

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self.quality = Quality()
        self._sensors = tuple(spec.sensors)
        self._steps = [
            STEPS.build(stage.kind, stage.params, where=f"steps[{i}]")
            for i, stage in enumerate(spec.steps)
        ]
        self._extractors = _extractors(spec.extractors, spec.sensors)
        names = [n for extractor, columns in self._extractors for n in extractor.names(columns)]
        if spec.features != names:
            raise ValueError(
                f"features: {len(spec.features)} names that are not the {len(names)} the "
                f"extractors give, which start {names[:3]}; leave features out of the spec "
                "file (or write it with `edgestack spec new`): they are derived from the "
                "extractors"
            )
        indices = [tuple(spec.sensors.index(c) for c in cols) for _, cols in self._extractors]
        # One array per group of channels, which its extractors share work on: a view when the
        # channels lie side by side, in order.
        groups = list(dict.fromkeys(indices))
        self._selectors = [_selector(index) for index in groups]
        self._plan = [
            (extractor, groups.index(index))
            for (extractor, _), index in zip(self._extractors, indices, strict=True)
        ]
        self._windower = Windower(spec.window, spec.hop)
        # What most pushes of a stream give; read-only, so it can be handed out every time.
        self._no_rows = np.empty((0, len(spec.features)), dtype=np.float32)
        self._no_rows.flags.writeable = False
        self.windows: np.ndarray | None = None
        """The windows the last push cut, `(k, channels, window, *frame)`, read-only; None
        before the first. Monitoring reads the samples behind the rows without cutting again."""

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
        for step in self._steps:
            chunk = step.push(chunk, self.quality)
        data = chunk.data
        if not np.isfinite(data).all():
            bad = ~np.isfinite(data)
            # What no step repaired is counted and zeroed here, after the steps, so a `clean`
            # step sees the bad values it exists for; they must never stop the pipeline.
            self.quality.count("non_finite", int(bad.sum()), example=_where(chunk, bad))
            data = np.where(bad, np.float32(0.0), data)
        windows = self._windower.push(data)
        windows.flags.writeable = False
        self.windows = windows
        return self.extract(windows, chunk.rate_hz)

    def extract(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        """The features of windows `(k, channels, window, *frame)` cut after the steps, at
        `rate_hz` after them: what `push` gives for the windows it cuts, and what training
        computes from windows kept raw."""
        if not len(windows):
            return self._no_rows
        groups = []
        for selector in self._selectors:
            group = windows[:, selector]
            group.flags.writeable = False  # read-only: extractors may share work on it
            groups.append(group)
        return np.hstack([extractor(groups[g], rate_hz) for extractor, g in self._plan])

    def reset(self) -> None:
        """Forget the stream: the steps' state and the partial window, so nothing mixes samples
        from before and after a change of source or model."""
        for step in self._steps:
            step.reset()
        self._windower.reset()


def silence(spec: InputSpec, units: Sequence[str], frame: tuple[int, ...] = ()) -> Chunk:
    """Two windows and a hop of zeros on `spec`'s sensors and rate. Pushed through a fresh
    pipeline before use, it finds the step parameters that only the stream can check (a
    cutoff above the Nyquist rate, a resampling ratio) at load time, not later on a device."""
    data = np.zeros((len(spec.sensors), 2 * spec.window + spec.hop, *frame), dtype=np.float32)
    return Chunk(0.0, spec.rate_hz, tuple(spec.sensors), tuple(units), data)


def make_spec(
    sensors: Sequence[str],
    rate_hz: float,
    window: int,
    hop: int,
    steps: Sequence[StageSpec] = (),
    extractors: Sequence[FeatureSpec] = (),
) -> InputSpec:
    """An `InputSpec` whose `features` are the columns `extractors` give for `sensors`.

    make_spec(["mic"], 16000.0, 16000, 8000, extractors=[FeatureSpec(kind="mfcc")])
    """
    built = _extractors(list(extractors), list(sensors))
    features = [name for extractor, columns in built for name in extractor.names(columns)]
    return InputSpec(
        sensors=list(sensors),
        rate_hz=rate_hz,
        window=window,
        hop=hop,
        steps=list(steps),
        extractors=list(extractors),
        features=features,
    )


def extractors_of(names: Sequence[str], window: int) -> list[FeatureSpec]:
    """Extractors by name with their defaults, over every sensor; `raw` keeps the `window`
    readings of each window.

    make_spec(["ax", "ay"], 100.0, 128, 64, extractors_of(["time_stats", "raw"], 128))
    """
    return [
        FeatureSpec(kind=name, params={"size": window} if name == "raw" else {}) for name in names
    ]


def with_extractors(spec: InputSpec, names: Sequence[str]) -> InputSpec:
    """`spec`'s sensors, rate, windows and steps with the extractors `names` instead of its
    own: the spec of features computed from a dataset of `spec`'s raw windows."""
    return make_spec(
        spec.sensors,
        spec.rate_hz,
        spec.window,
        spec.hop,
        spec.steps,
        extractors_of(names, spec.window),
    )


def vibration_spec(rate_hz: float = 8000.0, window: int = 2048, hop: int = 2048) -> InputSpec:
    """The input spec for `MotorSimulator`'s channels: on each accelerometer axis the time
    statistics, the energy shares of 8 octave bands, the dominant frequency and the spectral
    centroid; the mean of the temperature.

    Windows of a quarter second do not overlap by default: each costs the uplink its
    features when collected, and overlapping ones would double that for little new."""
    sensors = list(MotorSimulator.channels)
    accel = [s for s in sensors if s.startswith("accel")]
    slow = [s for s in sensors if s not in accel]
    return make_spec(
        sensors,
        rate_hz,
        window,
        hop,
        extractors=[
            FeatureSpec(kind="time_stats", channels=accel),
            FeatureSpec(
                kind="band_energies", params={"bands": 8, "scale": "octave"}, channels=accel
            ),
            FeatureSpec(kind="dominant_frequency", channels=accel),
            FeatureSpec(kind="spectral_centroid", channels=accel),
            FeatureSpec(kind="mean", channels=slow),
        ],
    )


def _extractors(
    specs: Sequence[FeatureSpec], sensors: Sequence[str]
) -> list[tuple[Extractor, list[str]]]:
    """Each extractor built, with the channels it reads (all sensors when it names none)."""
    built = []
    for i, spec in enumerate(specs):
        columns = list(sensors) if spec.channels is None else spec.channels
        unknown = [c for c in columns if c not in sensors]
        if unknown:
            raise ValueError(
                f"extractors[{i}].channels: {unknown} are not among the sensors {list(sensors)}; "
                "name sensors of this input"
            )
        built.append((EXTRACTORS.build(spec.kind, spec.params, where=f"extractors[{i}]"), columns))
    return built


def _selector(index: tuple[int, ...]) -> slice | np.ndarray:
    """What takes the channels `index` from windows `(k, channels, ...)`."""
    if index and index == tuple(range(index[0], index[0] + len(index))):
        return slice(index[0], index[0] + len(index))
    return np.array(index, dtype=np.intp)


def _where(chunk: Chunk, bad: np.ndarray) -> str:
    channel, sample = (int(i[0]) for i in np.nonzero(bad)[:2])
    return f"{chunk.channels[channel]} sample {sample} of a chunk at t0={chunk.t0:.3f}"
