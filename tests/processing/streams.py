"""Recordings cut into chunks, and steps fed them: what the processing tests share."""

import numpy as np

from edgestack.processing import Step
from edgestack.sensing import Chunk, Quality


def recording(
    n: int,
    channels: int = 2,
    rate_hz: float = 1000.0,
    frame: tuple[int, ...] = (),
    seed: int = 0,
    t0: float = 100.0,
) -> Chunk:
    """Two tones and noise on each channel (each element of a frame), starting at `t0`."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate_hz
    tones = np.sin(2 * np.pi * 13.0 * t) + 0.5 * np.sin(2 * np.pi * 170.0 * t)
    data = tones.reshape(1, n, *[1] * len(frame)) + 0.2 * rng.standard_normal((channels, n, *frame))
    names = tuple(f"ch{c}" for c in range(channels))
    return Chunk(t0, rate_hz, names, ("g",) * channels, np.asarray(data, dtype=np.float32))


def sizes(rng: np.random.Generator, n: int) -> list[int]:
    """Chunk sizes summing to `n`: empty ones, single samples, short and long ones."""
    out: list[int] = []
    while sum(out) < n:
        out.append(int(rng.choice([0, 1, 2, 7, 31, 64, 200, 513])))
    out[-1] -= sum(out) - n
    return out


def split(chunk: Chunk, lengths: list[int]) -> list[Chunk]:
    """`chunk` as consecutive chunks of `lengths` samples, each with its own `t0`."""
    pieces, start = [], 0
    for length in lengths:
        stop = start + length
        stamps = None if chunk.timestamps is None else chunk.timestamps[start:stop]
        t0 = chunk.t0 + start / chunk.rate_hz if stamps is None or not length else stamps[0]
        pieces.append(chunk.with_data(chunk.data[:, start:stop], t0=t0, timestamps=stamps))
        start = stop
    return pieces


def feed(step: Step, chunks: list[Chunk], quality: Quality | None = None) -> list[Chunk]:
    """What `step` gives for each chunk in turn."""
    quality = Quality() if quality is None else quality
    return [step.push(chunk, quality) for chunk in chunks]


def joined(chunks: list[Chunk]) -> np.ndarray:
    return np.concatenate([c.data for c in chunks], axis=1)
