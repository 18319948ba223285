"""The whole loop on one machine: a hub and agents as real processes, driven by the API."""

from edgestack.demo.fleet import LocalFleet, wait_until
from edgestack.demo.scenario import DemoOptions, DemoReport, DemoResult, run_demo

__all__ = ["DemoOptions", "DemoReport", "DemoResult", "LocalFleet", "run_demo", "wait_until"]
