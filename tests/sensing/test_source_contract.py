"""The contract every registered source keeps, run over each of them.

A new source registers itself in `SOURCES` and adds a factory to `FACTORIES`; until it does,
`test_every_registered_source_has_a_factory` fails and names it.
"""

import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgestack.sensing import SOURCES, Quality, Source


@dataclass(frozen=True)
class Factory:
    """How to build one source for a test, and which promises it makes."""

    build: Callable[[Path], Source]
    simulated: bool  # exactly `n` samples per read, the same bytes for the same seed


def _simulated(name: str, **params: object) -> Factory:
    return Factory(lambda _: SOURCES.build(name, {"seed": 3, "start": 1000.0, **params}), True)


def _mqtt(_: Path) -> Source:
    # Nothing listens on port 1: the source has to work, empty, with its broker down.
    return SOURCES.build("mqtt", {"topics": {"dev/+/level": ["level"]}, "port": 1})


def _serial(_: Path) -> Source:
    """A serial source on a pseudo-terminal whose device has already sent a few lines."""
    master, slave = os.openpty()
    os.write(master, b"".join(b"%.1f,%d,%d\n" % (1000 + i / 10, i, -i) for i in range(50)))
    source = SOURCES.build("serial", {"port": os.ttyname(slave), "channels": ["x", "y"]})
    weakref.finalize(source, lambda: (os.close(master), os.close(slave)))
    return source


def _replay(tmp_path: Path) -> Source:
    path = tmp_path / "recording.csv"
    path.write_text("t,x,y\n" + "".join(f"{1000 + i / 10},{i},{-i}\n" for i in range(300)))
    return SOURCES.build("replay", {"path": path, "speed": 0.0})


FACTORIES: dict[str, Factory] = {
    "audio": _simulated("audio"),
    "camera": _simulated("camera", height=16, width=24),
    "colour": _simulated("colour"),
    "imu": _simulated("imu", activity="walk"),
    "light": _simulated("light"),
    "motor": _simulated("motor"),
    "mqtt": Factory(_mqtt, False),
    "ranger": _simulated("ranger"),
    "replay": Factory(_replay, False),
    "serial": Factory(_serial, False),
    "vehicle": _simulated("vehicle"),
    "weather": _simulated("weather"),
}

READS = (1, 37, 0, 200)


def test_every_registered_source_has_a_factory() -> None:
    registered = set(SOURCES.names())

    missing, stale = registered - set(FACTORIES), set(FACTORIES) - registered

    assert not missing, f"add a factory to FACTORIES for: {', '.join(sorted(missing))}"
    assert not stale, f"FACTORIES names sources nobody registers: {', '.join(sorted(stale))}"


@pytest.fixture(params=sorted(FACTORIES))
def made(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Source, Factory]:
    factory = FACTORIES[request.param]
    source = factory.build(tmp_path)
    request.addfinalizer(source.close)
    return source, factory


class TestSourceContract:
    def test_declares_one_unit_per_channel(self, made: tuple[Source, Factory]) -> None:
        source, _ = made

        channels, units = source.channels, source.units

        assert len(channels) == len(units) > 0
        assert len(set(channels)) == len(channels)
        assert source.rate_hz > 0
        assert isinstance(source.quality, Quality)

    def test_reading_nothing_gives_an_empty_chunk_of_the_right_shape(
        self, made: tuple[Source, Factory]
    ) -> None:
        source, _ = made

        empty = source.read(0)
        some = source.read(5)

        assert empty.n == 0
        assert empty.data.dtype == np.float32
        assert empty.data.shape == (len(source.channels), 0, *some.frame)
        assert (empty.channels, empty.units) == (source.channels, source.units)

    def test_reads_give_float32_chunks_moving_forward_in_time(
        self, made: tuple[Source, Factory]
    ) -> None:
        source, factory = made

        chunks = [source.read(n) for n in READS]

        frame = chunks[0].frame
        for n, chunk in zip(READS, chunks, strict=True):
            assert chunk.data.dtype == np.float32
            assert chunk.data.shape[0] == len(source.channels)
            assert chunk.frame == frame
            assert chunk.n == n if factory.simulated else chunk.n <= n
            assert chunk.channels == source.channels
            assert chunk.units == source.units
        starts = [c.times()[0] for c in chunks if c.n]
        assert starts == sorted(starts)

    def test_simulated_sources_repeat_themselves_however_read(
        self, made: tuple[Source, Factory], tmp_path: Path
    ) -> None:
        source, factory = made
        if not factory.simulated:
            pytest.skip("a live source gives what arrives")
        twin = factory.build(tmp_path)

        pieces = np.concatenate([source.read(n).data for n in READS], axis=1)
        whole = twin.read(sum(READS)).data

        assert np.array_equal(pieces, whole, equal_nan=True)

    def test_close_can_be_called_twice(self, made: tuple[Source, Factory]) -> None:
        source, _ = made
        source.read(3)

        source.close()
        source.close()
