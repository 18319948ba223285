"""Where samples come from: the chunk format, the source contract, simulated and real sources."""

from edgestack.sensing.chunk import Chunk
from edgestack.sensing.live import MqttSource, ReplaySource, SerialSource
from edgestack.sensing.motor import FAULTS, MotorSimulator
from edgestack.sensing.quality import Quality
from edgestack.sensing.simulated import (
    SENSOR_FAULTS,
    AudioSimulator,
    CameraSimulator,
    ColourSimulator,
    Defects,
    ImuSimulator,
    LightSimulator,
    RangerSimulator,
    VehicleSimulator,
    WeatherSimulator,
)
from edgestack.sensing.source import SOURCES, Source

__all__ = [
    "FAULTS",
    "SENSOR_FAULTS",
    "SOURCES",
    "AudioSimulator",
    "CameraSimulator",
    "Chunk",
    "ColourSimulator",
    "Defects",
    "ImuSimulator",
    "LightSimulator",
    "MotorSimulator",
    "MqttSource",
    "Quality",
    "RangerSimulator",
    "ReplaySource",
    "SerialSource",
    "Source",
    "VehicleSimulator",
    "WeatherSimulator",
]
