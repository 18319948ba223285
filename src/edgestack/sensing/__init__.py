"""Where samples come from: the chunk format, the source contract and a simulated machine."""

from edgestack.sensing.chunk import Chunk
from edgestack.sensing.motor import FAULTS, MotorSimulator
from edgestack.sensing.source import Source

__all__ = ["FAULTS", "Chunk", "MotorSimulator", "Source"]
