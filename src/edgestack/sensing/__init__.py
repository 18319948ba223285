"""Where samples come from: the chunk format, the source contract, simulated and real sources."""

from edgestack.sensing.chunk import Chunk
from edgestack.sensing.motor import FAULTS, MotorSimulator
from edgestack.sensing.quality import Quality
from edgestack.sensing.source import SOURCES, Source

__all__ = ["FAULTS", "SOURCES", "Chunk", "MotorSimulator", "Quality", "Source"]
