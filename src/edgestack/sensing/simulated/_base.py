"""What every simulated sensor shares: its clock, its defects, its faults and its read loop.

A simulator describes each channel (`Channel`: unit, nominal noise, span, physical range) and
computes the clean signal at given sample indices; this module turns that into readings with the
defects of a real sensor, controlled by `Defects`:

- noise: Gaussian, the channel's nominal level (plus a part proportional to the reading);
- dropouts: whole samples missing (NaN on every channel), as when a reading is lost in transit;
- outliers: single values (a pixel of a frame) off by 30-100 % of the channel's span;
- drift: an offset growing by a fraction of the span per hour, its sign fixed per channel.

Faults injected with `inject` (`SENSOR_FAULTS`) act on what the sensor measures until
`inject("normal")`: "stuck" holds every channel at its next reading, "drift" shifts every
channel's offset by 10 % of its span times the severity, "dead" makes one channel (drawn from the
seed) read zero, or the nearest value it can report.

Every random draw comes from its own stream, one sample at a time in sample-major order, so any
chunking of a recording gives the same bytes.
"""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgestack.sensing.chunk import Chunk
from edgestack.sensing.quality import Quality

__all__ = [
    "NOMINAL",
    "SENSOR_FAULTS",
    "Channel",
    "Defects",
    "Episodes",
    "Simulator",
    "Wander",
    "day_hours",
    "gather",
    "trapezoid",
]

SENSOR_FAULTS = ("stuck", "drift", "dead")

_SPIKE_MIN = 0.3  # smallest outlier, as a fraction of the channel's span
_DRIFT_JUMP = 0.1  # offset step of the "drift" fault at severity 1, as a fraction of the span


class Defects(BaseModel):
    """How far a simulated sensor's readings stray from the truth; all zero gives clean data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    noise: Annotated[float, Field(ge=0)] = 1.0
    """Noise as a multiple of the sensor's nominal noise (0 = none)."""
    dropout: Annotated[float, Field(ge=0, le=1)] = 0.001
    """Probability that a sample is missing (NaN on every channel)."""
    outliers: Annotated[float, Field(ge=0, le=1)] = 0.0005
    """Probability that one value is a spike of 30-100 % of its channel's span."""
    drift: Annotated[float, Field(ge=0)] = 0.01
    """Offset growth per hour, as a fraction of each channel's span."""


NOMINAL = Defects()
"""The defaults: a decent sensor with a little of every defect."""


@dataclass(frozen=True)
class Channel:
    """One channel of a simulated sensor: what it measures and how its readings go wrong."""

    name: str
    unit: str
    noise: float  # nominal noise, standard deviation in `unit`
    span: float  # typical full range in `unit`: scales spikes and drift
    low: float = -math.inf  # readings are clipped to what the sensor can report
    high: float = math.inf
    relative_noise: float = 0.0  # extra noise per unit of reading, as for a lux meter
    wraps: bool = False  # readings past `high` come back from `low`, as a heading does


def day_hours(seconds: np.ndarray) -> np.ndarray:
    """Hour of the day, 0 to 24, of times in seconds since the epoch, read as local solar time."""
    return np.mod(seconds, 86400.0) / 3600.0


class Simulator:
    """The shared half of every simulated source: subclasses give channels, signal and events.

    A subclass passes its `Channel`s to `__init__`, lists its event kinds in `events` and
    implements `_signal` (clean values at sample indices) and, if it has events, `_event`.
    """

    events: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        seed: int,
        rate_hz: float,
        start: float | None,
        defects: Defects,
        channels: Sequence[Channel],
        frame: tuple[int, ...] = (),
    ) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz: {rate_hz}, expected a rate above 0 Hz")
        self.rate_hz = float(rate_hz)
        self.quality = Quality()
        self.channels = tuple(c.name for c in channels)
        self.units = tuple(c.unit for c in channels)
        self.kinds = ("normal", *self.events, *SENSOR_FAULTS)
        self._start = time.time() if start is None else float(start)
        self._index = 0
        self._frame = frame
        self._spec = tuple(channels)
        self._defects = defects
        defect_seq, physics_seq = np.random.SeedSequence(seed).spawn(2)
        self._physics_seq = physics_seq
        setup, self._noise_rng, self._outlier_rng, self._dropout_rng, self._fault_rng = (
            np.random.default_rng(s) for s in defect_seq.spawn(5)
        )
        self._drift_sign = setup.choice([-1.0, 1.0], size=len(channels))
        self._fault = "normal"
        self._offset = np.zeros(len(channels))
        self._dead: int | None = None
        self._stuck: np.ndarray | None = None
        self._stuck_pending = False

    @property
    def fault(self) -> str:
        """The sensor fault in effect, `"normal"` when none."""
        return self._fault

    def inject(self, kind: str, severity: float = 1.0) -> None:
        """From the next sample on, start an event or a sensor fault from `kinds`.

        Events (`events`) play out once; a fault (`SENSOR_FAULTS`) lasts until
        `inject("normal")` removes it.
        """
        if kind not in self.kinds:
            raise ValueError(f"kind {kind!r} is unknown; valid kinds: {', '.join(self.kinds)}")
        if not (math.isfinite(severity) and severity >= 0):
            raise ValueError(f"severity: {severity} must be a finite number >= 0")
        if kind in self.events:
            self._event(kind, float(severity))
            return
        self._fault = kind
        self._offset = np.zeros(len(self._spec))
        self._dead, self._stuck, self._stuck_pending = None, None, kind == "stuck"
        if kind == "drift":
            span = np.array([c.span for c in self._spec])
            self._offset = _DRIFT_JUMP * severity * span * self._drift_sign
        elif kind == "dead":
            self._dead = int(self._fault_rng.integers(len(self._spec)))

    def close(self) -> None:
        """Nothing to release."""

    def read(self, n: int) -> Chunk:
        """The next `n` samples of every channel."""
        if n < 0:
            raise ValueError(f"n: {n} samples requested; ask for 0 or more")
        t0 = self._start + self._index / self.rate_hz
        if n == 0:
            # Filters carried across reads (lfilter) would get a wrong state from empty input.
            return Chunk.empty(t0, self.rate_hz, self.channels, self.units, self._frame)
        index = self._index + np.arange(n)
        data = self._measure(self._signal(index), index)
        self._index += n
        return Chunk(t0, self.rate_hz, self.channels, self.units, data.astype(np.float32))

    def _streams(self, k: int) -> list[np.random.Generator]:
        """`k` random streams for the physics, independent of the defects' streams."""
        return [np.random.default_rng(s) for s in self._physics_seq.spawn(k)]

    def _seconds(self, index: np.ndarray, speedup: float = 1.0) -> np.ndarray:
        """Time of these samples in seconds since the epoch, on a clock `speedup` times faster
        than the samples' own from `start` on (a day in 24 s of samples at 3600)."""
        return self._start + index / self.rate_hz * speedup

    def _signal(self, index: np.ndarray) -> np.ndarray:
        """Clean values at these sample indices (at least one), float64 `(channels, n, *frame)`."""
        raise NotImplementedError

    def _event(self, kind: str, severity: float) -> None:
        """Start event `kind` at sample `self._index`."""
        raise NotImplementedError

    def _measure(self, clean: np.ndarray, index: np.ndarray) -> np.ndarray:
        """What the sensor reports for `clean`: noise, drift, outliers, faults, clipping, gaps."""
        n, channels = index.size, len(self._spec)
        d = self._defects
        shape = (n, channels, *self._frame)
        along = (slice(None), None, *([None] * len(self._frame)))

        def per_channel(field: str) -> np.ndarray:
            return np.array([getattr(c, field) for c in self._spec])[along]

        span = per_channel("span")
        # Draws are (sample, channel, ...) and then moved channel-first: sample-major order.
        noise = np.moveaxis(self._noise_rng.standard_normal(shape), 0, 1)
        scale = per_channel("noise") + per_channel("relative_noise") * np.abs(clean)
        hours = index / self.rate_hz / 3600.0
        drift = d.drift * span * self._drift_sign[:, None] * hours
        offset = drift.reshape(channels, n, *([1] * len(self._frame))) + self._offset[along]
        data = clean + d.noise * scale * noise + offset

        # One uniform draw decides whether a value spikes and, rescaled, by how much and which way.
        u = np.moveaxis(self._outlier_rng.random(shape), 0, 1)
        spiking = u < d.outliers
        v = np.divide(u, d.outliers, out=np.zeros_like(u), where=spiking)
        size = _SPIKE_MIN + (1 - _SPIKE_MIN) * np.mod(2 * v, 1.0)
        data = np.where(spiking, data + np.where(v < 0.5, 1, -1) * size * span, data)

        if self._stuck_pending:
            self._stuck, self._stuck_pending = data[:, 0].copy(), False
        if self._stuck is not None:
            data = np.broadcast_to(self._stuck[:, None], data.shape).copy()
        if self._dead is not None:
            data[self._dead] = 0.0

        for k, c in enumerate(self._spec):
            if c.wraps:
                data[k] = c.low + np.mod(data[k] - c.low, c.high - c.low)
        data = np.clip(data, per_channel("low"), per_channel("high"))
        missing = self._dropout_rng.random(n) < d.dropout
        data[:, missing] = np.nan
        return data


E = TypeVar("E")


class Episodes(Generic[E]):
    """Back-to-back episodes of random length (an object passing, an obstacle coming and going).

    `draw(rng)` gives one episode's duration in seconds and its parameters. Episodes are drawn in
    order as the stream reaches them, so every chunking of the stream sees the same ones.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        rate_hz: float,
        draw: Callable[[np.random.Generator], tuple[float, E]],
    ) -> None:
        self._rng = rng
        self._rate_hz = rate_hz
        self._draw = draw
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._params: list[E] = []
        self._add(0)

    def at(self, index: np.ndarray) -> tuple[list[E], np.ndarray, np.ndarray, np.ndarray]:
        """For ascending sample indices (at least one): the episodes they fall in, each sample's
        episode, the seconds since that episode started and the episode's length in seconds."""
        while self._ends[-1] <= index[-1]:
            self._add(self._ends[-1])
        # Episodes that ended before this read are never asked for again.
        while self._ends[0] <= index[0]:
            del self._starts[0], self._ends[0], self._params[0]
        which = np.searchsorted(self._starts, index, side="right") - 1
        starts, ends = np.array(self._starts), np.array(self._ends)
        tau = (index - starts[which]) / self._rate_hz
        length = (ends - starts)[which] / self._rate_hz
        return self._params, which, tau, length

    def _add(self, start: int) -> None:
        seconds, params = self._draw(self._rng)
        self._starts.append(start)
        self._ends.append(start + max(1, round(seconds * self._rate_hz)))
        self._params.append(params)


def trapezoid(
    tau: np.ndarray, rise_s: float, hold_s: float | np.ndarray, fall_s: float
) -> np.ndarray:
    """0 before `tau` = 0, a smooth rise to 1 over `rise_s`, 1 for `hold_s`, a smooth fall to 0."""
    up = np.clip(tau / rise_s, 0.0, 1.0)
    down = np.clip((tau - rise_s - hold_s) / fall_s, 0.0, 1.0)
    return (np.cos(np.pi * down) - np.cos(np.pi * up)) / 2


class Occurrences:
    """Injected events still playing: when each began, how strong, how long it lasts."""

    def __init__(self, rate_hz: float) -> None:
        self._rate_hz = rate_hz
        self._items: list[tuple[int, float, float]] = []

    def add(self, start: int, severity: float, seconds: float) -> None:
        self._items.append((start, severity, seconds))

    def at(self, index: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """For each event not over before `index` (at least one sample): seconds since it began,
        and its severity."""
        first = index[0] / self._rate_hz
        self._items = [i for i in self._items if i[0] / self._rate_hz + i[2] > first]
        return [((index - start) / self._rate_hz, severity) for start, severity, _ in self._items]


def gather(params: Sequence[Any], field: str, which: np.ndarray) -> np.ndarray:
    """`field` of each sample's episode, as an array."""
    return np.array([getattr(p, field) for p in params])[which]


class Wander:
    """Slowly wandering values: unit-variance Ornstein-Uhlenbeck processes, one per time constant.

    Each call continues the processes by `n` steps of `dt_s` seconds, drawing one normal number
    per process and step in step-major order.
    """

    def __init__(self, rng: np.random.Generator, tau_s: Sequence[float], dt_s: float) -> None:
        self._rng = rng
        self._pole = np.exp(-dt_s / np.asarray(tau_s, dtype=float))
        self._gain = np.sqrt(1 - self._pole**2)
        # Start in the stationary distribution rather than at rest.
        self._state = (self._pole * rng.standard_normal(len(self._pole)))[:, None]

    def __call__(self, n: int) -> np.ndarray:
        """The next `n` values of every process, `(processes, n)`."""
        # scipy.signal loads here, not at import: it costs an agent about 70 MB and half a second
        # at start, and most apps never use it.
        from scipy.signal import lfilter

        shocks = self._rng.standard_normal((n, len(self._pole))).T
        out = np.empty_like(shocks)
        for k, (pole, gain) in enumerate(zip(self._pole, self._gain, strict=True)):
            out[k], self._state[k] = lfilter([gain], [1.0, -pole], shocks[k], zi=self._state[k])
        return out
