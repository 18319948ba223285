"""What the hot path reads from: anything that hands out consecutive chunks."""

from typing import Protocol

from edgestack.sensing.chunk import Chunk

__all__ = ["Source"]


class Source(Protocol):
    """A stream of samples at a fixed rate; each `read` continues where the last one stopped."""

    channels: tuple[str, ...]
    units: tuple[str, ...]
    rate_hz: float

    def read(self, n: int) -> Chunk:
        """The next `n` samples of every channel."""
        ...
