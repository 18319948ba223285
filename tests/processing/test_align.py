import numpy as np
import pytest

from edgestack.processing import AlignedSource, Aligner
from edgestack.sensing import Chunk, MotorSimulator, Quality

from .streams import sizes, split


def _ramp(name: str, rate_hz: float, t0: float, n: int, slope: float) -> Chunk:
    times = t0 + np.arange(n) / rate_hz
    return Chunk(t0, rate_hz, (name,), ("u",), (slope * (times - 10.0))[None, :])


def _aligner() -> Aligner:
    return Aligner(40.0, [("fast",), ("slow",)], [("u",), ("u",)])


def test_sources_at_different_rates_meet_on_one_grid_over_their_common_span() -> None:
    fast = _ramp("fast", 100.0, 10.0, 300, 2.0)
    slow = _ramp("slow", 30.0, 10.5, 60, -1.0)
    aligner = _aligner()

    first = aligner.push(0, fast, Quality())
    out = aligner.push(1, slow, Quality())

    grid = out.times()
    assert first.n == 0  # nothing until every source has data
    assert out.channels == ("fast", "slow")
    assert grid[0] == 10.5
    assert grid[-1] <= 10.5 + 59 / 30.0
    assert out.data[0] == pytest.approx(2.0 * (grid - 10.0), abs=1e-4)
    assert out.data[1] == pytest.approx(-1.0 * (grid - 10.0), abs=1e-4)


def test_any_interleaving_of_chunks_gives_the_same_aligned_stream() -> None:
    fast = _ramp("fast", 100.0, 10.0, 2000, 1.0)
    slow = _ramp("slow", 30.0, 10.5, 600, 1.0)
    slow.data[0] += np.sin(np.arange(600)).astype(np.float32)
    whole = _aligner()
    expected = np.concatenate(
        [whole.push(0, fast, Quality()).data, whole.push(1, slow, Quality()).data], axis=1
    )
    rng = np.random.default_rng(0)

    for _ in range(5):
        aligner = _aligner()
        queues = [split(fast, sizes(rng, fast.n)), split(slow, sizes(rng, slow.n))]
        out = []
        while queues[0] or queues[1]:
            source = int(rng.integers(2)) if queues[0] and queues[1] else int(not queues[0])
            out.append(aligner.push(source, queues[source].pop(0), Quality()).data)

        assert np.allclose(np.concatenate(out, axis=1), expected, atol=1e-6)


def test_a_channel_from_two_sources_is_refused() -> None:
    with pytest.raises(ValueError, match="more than one source"):
        Aligner(10.0, [("t",), ("t",)], [("u",), ("u",)])


def test_an_aligned_source_reads_its_sources_onto_one_grid() -> None:
    fast = MotorSimulator(1, rate_hz=2000.0, start=0.0)
    slow = MotorSimulator(2, rate_hz=1000.0, start=0.0)
    slow.channels = ("b_x", "b_y", "b_z", "b_temperature")
    source = AlignedSource([fast, slow], rate_hz=500.0)

    chunks = [source.read(100) for _ in range(5)]

    assert source.channels == (*fast.channels, *slow.channels)
    assert all(c.channels == source.channels and c.n <= 100 for c in chunks)
    assert sum(c.n for c in chunks) >= 490
    assert chunks[1].t0 == pytest.approx(chunks[0].t0 + chunks[0].n / 500.0)
