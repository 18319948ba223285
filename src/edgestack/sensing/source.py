"""What the hot path reads from, and the registry of every kind of source."""

from typing import Protocol

from edgestack.registry import Registry
from edgestack.sensing.chunk import Chunk
from edgestack.sensing.quality import Quality

__all__ = ["SOURCES", "Source"]


class Source(Protocol):
    """A stream of samples; each `read` continues where the last one stopped.

    Simulated sources make exactly `n` samples per read, reproducibly for a seed, however the
    reads are sized. Live sources (MQTT, serial, file replay in real time) never block: they
    return what has arrived since the last read, at most `n` samples, possibly none. Bad input
    is counted in `quality`, never raised.
    """

    channels: tuple[str, ...]
    units: tuple[str, ...]
    rate_hz: float
    quality: Quality

    def read(self, n: int) -> Chunk:
        """The next samples of every channel: `n` of them, or at most `n` for a live source."""
        ...

    def close(self) -> None:
        """Release what the source holds (connections, ports, files); reads stop."""
        ...


SOURCES: Registry[Source] = Registry("source", group="edgestack.sources")
