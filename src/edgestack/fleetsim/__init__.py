"""A fleet simulator: many lightweight devices per process speaking the real protocol
(enrol, twin, telemetry, events, bundle download) to load a hub and measure it."""

from edgestack.fleetsim._run import SimOptions, SimProgress, SimSummary, simulate
from edgestack.fleetsim._transport import TRANSPORTS, HttpTransport, Transport

__all__ = [
    "TRANSPORTS",
    "HttpTransport",
    "SimOptions",
    "SimProgress",
    "SimSummary",
    "Transport",
    "simulate",
]
