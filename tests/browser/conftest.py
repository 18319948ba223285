"""A real hub and agents, and Debian's Chromium driven by Playwright, for the dashboard's
end-to-end tests. Chromium comes from the system's packages, never downloaded."""

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bundles import random_bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import DeployRequest, DesiredPatch, RuleParams

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

DEVICES = ["edge-1", "edge-2"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
# Alarms need this many confident fault windows in a row until a test lowers it: about four
# minutes of the simulated motor's windows, longer than the tests run.
QUIET_RULE = RuleParams(min_confidence=0.5, trigger_windows=1000)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; skips, saying how to install it, when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("needs Debian's chromium: as root, `apt-get install -y chromium`")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator["Browser"]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs Playwright for Python: pip install -e '.[dev]'"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    """A hub and two agents on simulated motors, both running a model that sees only faults
    (it has no `normal` label), with an alarm rule too strict to raise anything yet, sending
    telemetry every second for the charts."""
    with LocalFleet(tmp_path_factory.mktemp("fleet"), DEVICES) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        model = fleet.client.register_model(
            random_bundle(5, name="motor", labels=("worn", "imbalance")).pack()
        )
        for device in DEVICES:
            wait_until(
                lambda d=device: fleet.client.device(d).reported if _enrolled(fleet, d) else None,
                timeout_s=60,
                what=f"{device} to report",
            )
            fleet.client.update_desired(
                device, DesiredPatch(rules=QUIET_RULE, telemetry_interval_s=1)
            )
        fleet.client.deploy(DeployRequest(model="motor", devices=DEVICES))
        for device in DEVICES:
            wait_until(
                lambda d=device: (
                    (r := fleet.client.device(d).reported)
                    and r.bundle
                    and r.bundle.digest == model.digest
                    and r.rules == QUIET_RULE
                ),
                timeout_s=60,
                what=f"{device} to run the model under the strict rule",
            )
        yield fleet


def _enrolled(fleet: LocalFleet, device: str) -> bool:
    return any(d.device_id == device for d in fleet.client.devices())


@pytest.fixture
def page(browser: "Browser", fleet: LocalFleet, request: pytest.FixtureRequest) -> Iterator["Page"]:
    """A fresh browser context (no login) on the fleet's dashboard."""
    with dashboard(browser, fleet.hub_url, request.node.name) as page:
        yield page


@contextmanager
def dashboard(browser: "Browser", hub_url: str, name: str) -> Iterator["Page"]:
    """A fresh browser context (no login) on the dashboard of the hub at `hub_url`; its
    screenshot is kept in test-artifacts/browser/ as `name`, passed or failed. Anything the
    page raised fails the test."""
    context = browser.new_context(base_url=hub_url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A refused script or style, a failed request, a policy violation: all say so here. A 4xx
    # is the hub refusing what a test asks on purpose (and the page asking who is logged in
    # before anyone is), which the page shows.
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not re.search(r"status of 4\d\d", message.text)
            and errors.append(message.text)
        ),
    )
    try:
        yield page
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
        context.close()
    assert not errors, f"the page raised: {errors}"
