"""The dashboard in a real browser against a real hub and agents: log in, see the fleet,
change a device's alarm rule and see the device apply it, watch its alarm arrive live and
hear it spoken, and a viewer who sees no controls."""

import re
from typing import TYPE_CHECKING

import pytest

from bundles import random_bundle
from edgestack.demo import LocalFleet
from edgestack.protocol import RolloutRequest, TokenCreate

from .conftest import DEVICES

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python: pip install -e '.[dev]'"
).expect
pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT_MS = 30_000


def _log_in(page: "Page", token: str) -> None:
    page.goto("/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()


def test_an_operator_logs_in_and_sees_the_fleet(page: "Page", fleet: LocalFleet) -> None:
    page.goto("/")
    page.get_by_label("API token").fill("not a token")
    page.get_by_role("button", name="Log in").click()
    refused = page.locator("#login-error")
    expect(refused).to_contain_text("not an API token", timeout=WAIT_MS)

    _log_in(page, fleet.admin_token)

    expect(page.locator("#identity")).to_have_text("hub-admin (admin)", timeout=WAIT_MS)
    for device in DEVICES:
        row = page.locator(f"tr[data-device='{device}']")
        expect(row).to_contain_text("running", timeout=WAIT_MS)
        expect(row).to_contain_text("motor v1")
    expect(page.locator(".summary")).to_contain_text("2 devices, 2 running a model")


def test_an_alarm_rule_set_on_the_page_reaches_the_device_and_its_alarm_arrives_live(
    page: "Page", fleet: LocalFleet
) -> None:
    # Records what the page would say aloud instead of saying it.
    page.add_init_script(
        "window.spoken = [];window.speechSynthesis.speak = (u) => window.spoken.push(u.text);"
    )
    _log_in(page, fleet.admin_token)
    page.get_by_role("link", name="edge-1").first.click()
    reported = page.locator("tr[data-field='alarm-rule'] td.reported")
    expect(reported).to_contain_text("raise after 1000", timeout=WAIT_MS)
    expect(page.locator("#events li[data-kind='alarm_raised']")).to_have_count(0)
    page.get_by_label("speak alerts").check()
    page.evaluate("window.loadedOnce = true")

    rule = page.get_by_role("form", name="Alarm rule")
    rule.get_by_label("Min confidence").fill("0")
    rule.get_by_label("Raise after (windows)").fill("1")
    rule.get_by_role("button", name="Set rule").click()

    expect(page.get_by_role("status")).to_contain_text("Alarm rule: sent")
    expect(page.locator("tr[data-field='alarm-rule'] td.desired")).to_contain_text(
        "raise after 1,", timeout=WAIT_MS
    )
    expect(reported).to_contain_text("min confidence 0; raise after 1,", timeout=WAIT_MS)
    alarm = page.locator("#events li[data-kind='alarm_raised']").filter(has_text="edge-1")
    expect(alarm.first).to_be_visible(timeout=WAIT_MS)
    # Chart.js, served by the hub, draws the batches the device sent.
    page.wait_for_function(
        "Chart.getChart(document.querySelector('figure.chart canvas')).data.labels.length > 0",
        timeout=WAIT_MS,
    )
    page.get_by_role("link", name="Fleet").click()
    expect(page.locator("tr[data-device='edge-1'] td.alerting")).to_have_text(
        re.compile("worn|imbalance"), timeout=WAIT_MS
    )
    assert page.evaluate("window.loadedOnce") is True, "the page reloaded"
    spoken = page.evaluate("window.spoken")
    assert any(re.match(r"Alarm on edge-1: (worn|imbalance) in 1 windows", s) for s in spoken)
    rules = fleet.client.device("edge-1").reported
    assert rules is not None and rules.rules is not None and rules.rules.trigger_windows == 1


def test_a_viewer_sees_the_fleet_and_no_controls(page: "Page", fleet: LocalFleet) -> None:
    made = fleet.client.create_token(TokenCreate(name="wall-screen", role="viewer"))

    _log_in(page, made.token)

    expect(page.locator("#identity")).to_have_text("wall-screen (viewer)", timeout=WAIT_MS)
    expect(page.locator("tr[data-device='edge-1']")).to_contain_text("running", timeout=WAIT_MS)
    page.get_by_role("link", name="edge-1").first.click()
    expect(page.locator("tr[data-field='alarm-rule'] td.reported")).to_contain_text(
        "raise after", timeout=WAIT_MS
    )
    expect(page.get_by_role("region", name="controls")).to_have_count(0)
    expect(page.get_by_role("button", name="Set rule")).to_have_count(0)


def test_an_operator_pauses_resumes_and_rolls_back_a_rollout_on_the_page(
    page: "Page", fleet: LocalFleet
) -> None:
    fleet.client.register_model(
        random_bundle(6, name="motor", version=2, labels=("worn", "imbalance")).pack()
    )
    started = fleet.client.start_rollout(
        RolloutRequest(model="motor", version=2, to=["edge-2"], waves=[1.0], shadow_s=3600)
    )
    _log_in(page, fleet.admin_token)
    page.get_by_role("link", name="Models").click()
    expect(page.locator("section.model")).to_contain_text("v2", timeout=WAIT_MS)
    page.get_by_role("link", name="Rollouts").click()
    card = page.locator(f"section[data-rollout='{started.id}']")
    state = card.locator("h3 .badge")
    expect(card).to_contain_text("motor v2", timeout=WAIT_MS)
    expect(card).to_contain_text("edge-2")

    card.get_by_role("button", name="Pause").click()
    expect(state).to_have_text("paused", timeout=WAIT_MS)
    card.get_by_role("button", name="Resume").click()
    expect(state).not_to_have_text("paused", timeout=WAIT_MS)
    card.get_by_role("button", name="Roll back").click()
    expect(state).to_have_text("rolled_back", timeout=WAIT_MS)

    assert fleet.client.rollout(started.id).state == "rolled_back"
    expect(card.get_by_role("button")).to_have_count(0)
