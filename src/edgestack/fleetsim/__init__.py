"""A fleet simulator: many lightweight devices per process speaking the real protocol
(enrol, twin, telemetry, events, bundle download) to load a hub and measure it."""

from edgestack.fleetsim._mqtt import MqttTransport
from edgestack.fleetsim._registry import TRANSPORTS, transport_scheme
from edgestack.fleetsim._run import SimOptions, SimProgress, SimSummary, simulate
from edgestack.fleetsim._transport import HttpTransport, Transport

__all__ = [
    "TRANSPORTS",
    "HttpTransport",
    "MqttTransport",
    "SimOptions",
    "SimProgress",
    "SimSummary",
    "Transport",
    "simulate",
    "transport_scheme",
]
