"""Real inputs: MQTT topics, serial ports and recorded files, each a registered `Source`."""

from edgestack.sensing.live.mqtt import MqttSource
from edgestack.sensing.live.replay import ReplaySource
from edgestack.sensing.live.serialport import SerialSource

__all__ = ["MqttSource", "ReplaySource", "SerialSource"]
