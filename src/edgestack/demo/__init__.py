"""The whole loop on one machine: a hub and agents as real processes, driven by the API."""

from edgestack.demo.drift import DriftOptions, DriftReport, run_drift
from edgestack.demo.fleet import LocalFleet, wait_until
from edgestack.demo.scenario import DemoOptions, DemoReport, DemoResult, run_demo

__all__ = [
    "DemoOptions",
    "DemoReport",
    "DemoResult",
    "DriftOptions",
    "DriftReport",
    "LocalFleet",
    "run_demo",
    "run_drift",
    "wait_until",
]
