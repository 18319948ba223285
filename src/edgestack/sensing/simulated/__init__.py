"""Simulated sensors of every kind, each a `Source` registered under a short name.

Seeded (`seed`, 0 by default: each seed one machine, place or trip) and reproducible however
the reads are sized, with the defects of real sensors (`Defects`) and injectable sensor faults
(`SENSOR_FAULTS`) besides each simulator's own events; `kinds` on each source lists what
`inject` accepts.

- vehicle (`VehicleSimulator`): latitude, longitude (deg), altitude (m), speed (m/s), heading (deg)
- imu (`ImuSimulator`): accel_x/y/z (g), gyro_x/y/z (deg/s)
- weather (`WeatherSimulator`): pressure (hPa), temperature (degC), humidity (%RH)
- light (`LightSimulator`): illuminance (lux)
- ranger (`RangerSimulator`): distance (m)
- audio (`AudioSimulator`): sound (Pa)
- colour (`ColourSimulator`): red, green, blue, clear (count)
- camera (`CameraSimulator`): camera (intensity), one (height, width) frame per sample
"""

from edgestack.sensing.simulated._base import SENSOR_FAULTS, Defects
from edgestack.sensing.simulated.audio import AudioSimulator
from edgestack.sensing.simulated.camera import SHAPES, CameraSimulator
from edgestack.sensing.simulated.colour import COLOURS, ColourSimulator
from edgestack.sensing.simulated.imu import ImuSimulator
from edgestack.sensing.simulated.light import LightSimulator
from edgestack.sensing.simulated.ranger import RangerSimulator
from edgestack.sensing.simulated.vehicle import VehicleSimulator
from edgestack.sensing.simulated.weather import WeatherSimulator

__all__ = [
    "COLOURS",
    "SENSOR_FAULTS",
    "SHAPES",
    "AudioSimulator",
    "CameraSimulator",
    "ColourSimulator",
    "Defects",
    "ImuSimulator",
    "LightSimulator",
    "RangerSimulator",
    "VehicleSimulator",
    "WeatherSimulator",
]
