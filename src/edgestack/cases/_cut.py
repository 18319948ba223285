"""Cases cut into the windows of an input spec, and uploaded to a hub as one version."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from pydantic import ValidationError

from edgestack.bundle import FeatureSpec, InputSpec
from edgestack.cases._read import CaseError, Cases
from edgestack.client import HubClient
from edgestack.processing import FeaturePipeline, make_spec
from edgestack.protocol import DataSample, DatasetVersion, SampleImport, Split
from edgestack.sensing import Chunk

__all__ = ["Cut", "Length", "cut_cases", "import_cut", "raw_spec"]

Length = Literal["resample", "pad", "crop"]
"""What fits a case whose length is not a whole number of hops after a window: `resample`
it to the nearest such length, `pad` it with its last reading, or `crop` the readings after
its last whole window."""

# What one upload may carry: the hub takes 10,000 samples and 64 MiB a body; about 16 MiB
# of JSON (a feature is at most about 16 characters) keeps a batch well within both.
_BATCH_BYTES = 16 * 1024 * 1024
_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class Cut:
    """Rows of `spec`'s features, one per window, with the label, split (None: the hub's) and
    case of each and the time its window ended; the cases shorter than a window (`short`, left
    out when cropped), readings cropped and readings that were no numbers (read as 0)."""

    spec: InputSpec
    features: np.ndarray
    labels: list[str]
    splits: list[Split | None]
    cases: list[str]
    times: list[datetime]
    short: list[str] = field(default_factory=list)
    cropped: int = 0
    bad_readings: int = 0


def raw_spec(cases: Cases, window: int | None = None, hop: int | None = None) -> InputSpec:
    """A spec keeping every reading of each window on the cases' channels: windows of `window`
    readings (the longest case's length when left out) every `hop` (`window` when left out)."""
    if cases.rate_hz is None:
        raise CaseError(
            "--rate: the files have no time column to tell the rate; give --rate HZ (for cases "
            "without time any rate will do, e.g. --rate 1)"
        )
    size = window or max(case.data.shape[1] for case in cases.cases)
    try:
        return make_spec(
            cases.channels,
            cases.rate_hz,
            size,
            hop or size,
            extractors=[FeatureSpec(kind="raw", params={"size": size})],
        )
    except ValueError as exc:
        given = "--window" if window else "the longest case's length"
        raise CaseError(
            f"--window: windows of {size} readings ({given}) cannot be kept raw: {exc}; give "
            "a shorter --window"
        ) from None


def cut_cases(
    cases: Cases,
    spec: InputSpec,
    length: Length = "resample",
    *,
    recorded_at: datetime,
    progress: Callable[[int], None] = lambda done: None,
) -> Cut:
    """Each case fitted to a whole number of windows (`length` says how; a case shorter than a
    window is resampled or padded to one, or left out when cropped, and named in `short`) and
    run through `spec`'s pipeline as a device runs it. Cases whose times are no dates are
    dated one after the other, a second apart, from `recorded_at`. `progress` hears the cases
    done."""
    if cases.rate_hz is not None and abs(cases.rate_hz / spec.rate_hz - 1) > 0.01:
        raise CaseError(
            f"rate_hz: the files are sampled at {cases.rate_hz:g} Hz and the spec at "
            f"{spec.rate_hz:g} Hz; give a spec of their rate"
        )
    missing = [s for s in spec.sensors if s not in cases.channels]
    if missing:
        raise CaseError(
            f"sensors: the spec reads {missing}, which the files lack; their channels: "
            f"{', '.join(cases.channels)}"
        )
    rows = [cases.channels.index(s) for s in spec.sensors]
    try:
        pipeline = FeaturePipeline(spec)
    except ValueError as exc:
        raise CaseError(str(exc)) from None
    features, labels, splits, names, times = [], [], [], [], []
    short, cropped, bad = [], 0, 0
    start = recorded_at
    for done, case in enumerate(cases.cases, 1):
        data = case.data[rows]
        finite = np.isfinite(data)
        if not finite.all():
            bad += int((~finite).sum())
            data = np.where(finite, data, np.float32(0.0))
        n = data.shape[1]
        if n < spec.window:
            short.append(case.name)
        fitted = _fit(data, spec.window, spec.hop, length)
        cropped += n - fitted.shape[1] if length == "crop" and n >= spec.window else 0
        begin = case.start or start
        if fitted.shape[1]:
            pipeline.reset()  # cases are separate recordings: no window spans two
            chunk = Chunk(
                begin.timestamp(), spec.rate_hz, tuple(spec.sensors), ("",) * len(rows), fitted
            )
            try:
                got = pipeline.push(chunk)
            except ValueError as exc:
                raise CaseError(f"case {case.name!r}: {exc}") from None
            ends = (np.arange(len(got)) * spec.hop + spec.window) / spec.rate_hz
            features.append(got)
            labels += [case.label] * len(got)
            splits += [case.split] * len(got)
            names += [case.name] * len(got)
            times += [begin + timedelta(seconds=float(e)) for e in ends]
        start = max(start, begin) + timedelta(seconds=n / spec.rate_hz + 1)
        progress(done)
    matrix = np.concatenate(features) if features else np.empty((0, len(spec.features)))
    return Cut(spec, matrix, labels, splits, names, times, short, cropped, bad)


def import_cut(
    client: HubClient,
    dataset: str,
    cut: Cut,
    progress: Callable[[int], None] = lambda done: None,
) -> DatasetVersion:
    """Upload `cut`'s rows into `dataset` with their labels and splits, in as few batches as
    the hub takes, then freeze them once as its next version. `progress` hears rows sent."""
    if not len(cut.features):
        raise CaseError("no case makes a window; give a shorter --window, or --length pad")
    per_batch = max(1, min(_BATCH_ROWS, _BATCH_BYTES // (16 * len(cut.spec.features) + 200)))
    # Every sample checked before the first is sent, so a bad one uploads nothing.
    samples = [_sample(cut, i, row) for i, row in enumerate(cut.features.astype(float).tolist())]
    for begin in range(0, len(samples), per_batch):
        batch = samples[begin : begin + per_batch]
        client.import_samples(
            dataset, SampleImport(batch_id=uuid.uuid4(), spec=cut.spec, samples=batch)
        )
        progress(begin + len(batch))
    return client.freeze(dataset, spec=cut.spec.fingerprint())


def _sample(cut: Cut, i: int, row: list[float]) -> DataSample:
    try:
        return DataSample(at=cut.times[i], label=cut.labels[i], features=row, split=cut.splits[i])
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise CaseError(f"case {cut.cases[i]!r}: a window's {where} {message}") from None


def _fit(data: np.ndarray, window: int, hop: int, length: Length) -> np.ndarray:
    """`data` `(channels, n)` at a length that ends on a whole window."""
    n = data.shape[1]
    hops = max(0.0, (n - window) / hop)
    if length == "crop":
        return data[:, : window + hop * int(hops)] if n >= window else data[:, :0]
    if length == "pad":
        target = window + hop * int(np.ceil(hops))
        return np.pad(data, ((0, 0), (0, target - n)), mode="edge")
    target = window + hop * round(hops)
    if target == n:
        return data
    if n == 1:
        return np.repeat(data, target, axis=1)
    at = np.linspace(0, n - 1, target)
    return np.stack([np.interp(at, np.arange(n), row) for row in data]).astype(np.float32)
