"""The dashboard in a real browser against a real hub and agents: log in, see the fleet,
change a device's alarm rule and see the device apply it, watch its alarm arrive live and
hear it spoken, controls by role (a viewer sees none), a device's trade-off drawn from its
tradeoff job (run by operators only), charts that say when they cannot be drawn, a rollout
steered by its buttons, a model's Pareto plot, a failed job, and data collected from a
device's page drawn on the datasets page."""

import math
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import pytest

from bundles import random_bundle
from edgestack.bundle import Bundle, FeatureSpec, Footprint, InputSpec, Lineage
from edgestack.demo import LocalFleet, wait_until
from edgestack.hub import ui
from edgestack.learning.workflow import train_model
from edgestack.processing import vibration_spec
from edgestack.protocol import (
    JOB_ENDED,
    DataSample,
    EnrolRequest,
    EvaluateRequest,
    Hardware,
    JobView,
    RolloutRequest,
    SampleImport,
    TokenCreate,
    TradeoffRequest,
    TrainRequest,
)
from integration.test_cli_train import _upload

from .conftest import DEVICES, dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

expect = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python: pip install -e '.[dev]'"
).expect
pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT_MS = 30_000
CROWD = 25  # devices on a hub of their own, over several of the pages the tests ask for
# The most pages the dashboard follows for one listing.
MAX_PAGES = int(re.search(r"MAX_PAGES = (\d+);", (ui.STATIC / "api.js").read_text())[1])


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
    # The labels of each device's latest batch: the model knows no normal.
    expect(page.locator("tr[data-device='edge-1'] td.now")).to_contain_text(
        re.compile("worn|imbalance"), timeout=WAIT_MS
    )

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    page.reload()
    expect(page.get_by_label("API token")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("tr[data-device]")).to_have_count(0)


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
        "() => Chart.getChart(document.querySelector('figure.chart canvas')).data.labels.length",
        timeout=WAIT_MS,
    )
    page.get_by_role("link", name="Fleet").click()
    expect(page.locator("tr[data-device='edge-1'] td.alerting")).to_have_text(
        re.compile("worn|imbalance"), timeout=WAIT_MS
    )
    assert page.evaluate("window.loadedOnce") is True, "the page reloaded"
    spoken = page.evaluate("window.spoken")
    # Loaded again, the page lists the alarm among the latest events but does not say it
    # again: only alarms that arrive while it is open are spoken. The switch stays on.
    page.reload()
    expect(alarm.first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_label("speak alerts")).to_be_checked()
    spoken_again, arrived = page.evaluate(
        "() => [window.spoken.length,"
        " document.querySelectorAll('#events li.fresh[data-kind=alarm_raised]').length]"
    )
    assert spoken_again == arrived
    assert any(re.match(r"Alarm on edge-1: (worn|imbalance) in 1 windows", s) for s in spoken)
    rules = fleet.client.device("edge-1").reported
    assert rules is not None and rules.rules is not None and rules.rules.trigger_windows == 1


@pytest.fixture(scope="module")
def traded(fleet: LocalFleet) -> JobView:
    """A tradeoff job of edge-1 that succeeded: a shallow tree on the device and a deep one
    on the cloud tier, trained here on the motor's windows and measured by the hub's worker."""
    _upload(fleet, "motors")
    for params in ({"max_depth": 2}, {}):
        train_model(
            fleet.client, TrainRequest(dataset="motors", model="decision_tree", params=params)
        )
    job = fleet.client.submit_job(
        TradeoffRequest(model="motors", version=1, device="edge-1", cloud="motors", fractions=[0.2])
    )
    return _ended(fleet, job.id)


def _ended(fleet: LocalFleet, job_id: int) -> JobView:
    ended = wait_until(
        lambda: (job := fleet.client.job(job_id)).state in JOB_ENDED and job,
        timeout_s=120,
        what=f"job {job_id} to end",
        every_s=0.5,
    )
    assert ended.state == "succeeded", ended.error
    return ended


@pytest.mark.parametrize(("role", "controls"), [("viewer", 0), ("operator", 1)])
def test_controls_appear_by_role(
    page: "Page", fleet: LocalFleet, traded: JobView, role: str, controls: int
) -> None:
    made = fleet.client.create_token(TokenCreate(name=f"wall-{role}", role=role))

    _log_in(page, made.token)

    expect(page.locator("#identity")).to_have_text(f"wall-{role} ({role})", timeout=WAIT_MS)
    expect(page.locator("tr[data-device='edge-1']")).to_contain_text("running", timeout=WAIT_MS)
    page.get_by_role("link", name="edge-1").first.click()
    expect(page.locator("tr[data-field='alarm-rule'] td.reported")).to_contain_text(
        "raise after", timeout=WAIT_MS
    )
    expect(page.get_by_role("region", name="controls")).to_have_count(controls, timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Set rule")).to_have_count(controls)

    # The trade-off of the device's newest tradeoff job: everyone sees it, operators run one.
    panel = page.get_by_role("region", name="trade-off")
    assert traded.result is not None
    policies = [c["policy"] for c in traded.result["choices"]]
    expect(panel.locator("tbody tr")).to_have_count(len(policies), timeout=WAIT_MS)
    expect(panel.locator("tr[data-policy='cloud only']")).to_contain_text(
        f"{traded.result['choices'][-1]['accuracy']:.4f}"
    )
    expect(panel.get_by_role("button", name="Run trade-off")).to_have_count(controls)
    plotted = panel.evaluate(
        "(section) => Chart.getChart(section.querySelector('canvas')).data.datasets"
        ".map((set) => set.label)"
    )
    panel.get_by_label("Plot accuracy against").select_option("uplink_bytes")
    expect(panel.locator("figcaption")).to_contain_text("uplink bytes", timeout=WAIT_MS)
    against_bytes = panel.evaluate(
        "(section) => Chart.getChart(section.querySelector('canvas')).data.datasets"
        ".map((set) => [set.data[0].x, set.data[0].y])"
    )
    assert plotted == policies == ["device only", "joint 20% (confidence)", "cloud only"]
    assert against_bytes == [[c["uplink_bytes"], c["accuracy"]] for c in traded.result["choices"]]
    if controls:
        run = panel.get_by_role("form", name="Run a trade-off")
        run.get_by_label("Device model").select_option("motors@1")
        run.get_by_label("Cloud model").select_option("motors@2")
        run.get_by_label("Offload fractions").fill("0.1,0.5")
        run.get_by_role("button", name="Run trade-off").click()
        expect(panel.locator(".status")).to_contain_text("queued", timeout=WAIT_MS)
        queued = int(re.search(r"job (\d+)", panel.locator(".status").inner_text())[1])
        asked = fleet.client.job(queued).job
        # Cancelled, not waited for: the fixture's job shows a measured one drawn already.
        fleet.client.cancel_job(queued)
        expect(panel.locator(".status")).to_contain_text(f"job {queued} cancelled", timeout=WAIT_MS)
        assert asked == TradeoffRequest(
            model="motors",
            version=1,
            device="edge-1",
            cloud="motors",
            cloud_version=2,
            fractions=[0.1, 0.5],
        )


def test_without_chart_js_the_charts_say_so_and_the_rest_works(
    page: "Page", fleet: LocalFleet
) -> None:
    # As a hub without Chart.js installed serves it: nothing that defines `Chart`.
    page.route("**/ui/vendor/chart.js/**", lambda route: route.fulfill(status=200, body=""))
    _log_in(page, fleet.admin_token)

    page.goto("/#/devices/edge-1")

    expect(page.locator("figure.chart").first).to_contain_text("Charts unavailable")
    expect(page.locator("tr[data-field='model'] td.reported")).to_have_text(
        "motor v1", timeout=WAIT_MS
    )
    expect(page.get_by_role("button", name="Set rule")).to_be_visible()


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
    motor = page.locator("section.model", has=page.get_by_role("heading", name="motor", exact=True))
    expect(motor).to_contain_text("v2", timeout=WAIT_MS)
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


def test_a_models_versions_show_their_lineage_and_pareto_front(
    page: "Page", fleet: LocalFleet
) -> None:
    first = _register_pump(fleet, accuracy=0.95, p99_ms=2.0)
    _register_pump(fleet, accuracy=0.94, p99_ms=0.8, parent=first, optimisation="int8_static")
    _register_pump(fleet, accuracy=0.93, p99_ms=1.5, parent=first, optimisation="fp16")
    _log_in(page, fleet.admin_token)

    page.get_by_role("link", name="Models").click()

    pump = page.locator("section.model", has=page.get_by_role("heading", name="pump"))
    expect(pump.locator("tbody tr")).to_have_count(3, timeout=WAIT_MS)
    expect(pump.locator("tbody tr").nth(1)).to_contain_text("int8_static of v1")
    expect(pump.locator("figcaption")).to_contain_text("accuracy against latency")
    plotted = pump.evaluate(
        "(section) => Chart.getChart(section.querySelector('canvas')).data.datasets"
        ".map((set) => [set.label, set.data.map((point) => point.version)])"
    )

    assert plotted == [["Pareto front", [1, 2]], ["dominated", [3]]]


def test_a_failed_job_shows_why_and_its_log(page: "Page", fleet: LocalFleet) -> None:
    job = fleet.client.submit_job(EvaluateRequest(model="motor"))
    _log_in(page, fleet.admin_token)

    page.get_by_role("link", name="Jobs").click()

    row = page.locator("tr", has=page.get_by_role("cell", name=str(job.id), exact=True))
    expect(row).to_contain_text("failed", timeout=60_000)
    error = fleet.client.job(job.id).error
    assert error is not None
    expect(row).to_contain_text(error[:40])
    row.get_by_role("button", name="Log").click()
    expect(page.locator("pre.log")).to_contain_text(f"job {job.id}")
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)


def _register_pump(
    fleet: LocalFleet,
    *,
    accuracy: float,
    p99_ms: float,
    parent: str | None = None,
    optimisation: str | None = None,
) -> str:
    """Register the next version of `pump`, trained and measured as given; its digest."""
    bundle = Bundle.create(
        name="pump",
        labels=["normal", "worn"],
        input=vibration_spec(),
        model=b"not run by any device",
        metrics={"accuracy": accuracy},
        footprint=Footprint(
            model_bytes=1000, peak_ram_bytes=4096, latency_ms_p50=p99_ms / 2, latency_ms_p99=p99_ms
        ),
        lineage=Lineage(trainer="random_forest", parent=parent, optimisation=optimisation),
    )
    return fleet.client.register_model(bundle.pack()).digest


def test_data_collected_from_the_page_shows_per_device_with_a_sample_drawn(
    page: "Page", fleet: LocalFleet
) -> None:
    _log_in(page, fleet.admin_token)
    page.goto("/#/devices/edge-2")
    collect = page.get_by_role("form", name="Collect labelled data")
    collect.get_by_label("Label").fill("normal")
    collect.get_by_label("Dataset").fill("bench")
    collect.get_by_role("button", name="Start collecting").click()
    collecting = page.locator("tr[data-field='collecting'] td.desired")
    expect(collecting).to_have_text("normal into bench", timeout=WAIT_MS)
    wait_until(
        lambda: any(d.name == "bench" and d.counts.total >= 3 for d in fleet.client.datasets()),
        timeout_s=30,
        what="edge-2 to send samples",
    )
    collect.get_by_role("button", name="Stop collecting").click()
    expect(collecting).to_have_text("no", timeout=WAIT_MS)

    # A recording of raw windows: its features are the signal itself, drawn as a line.
    fleet.client.import_samples("bench", _raw_recording())

    page.get_by_role("link", name="Datasets").click()

    expect(page.locator("table").first).to_contain_text("bench", timeout=WAIT_MS)
    per_device = page.locator("section.viewer table")
    expect(per_device).to_contain_text("edge-2")
    expect(per_device).to_contain_text("bench-rig")
    expect(per_device.locator("thead")).to_contain_text("normal")
    viewer = page.locator("section.viewer")
    recorded = viewer.locator("option", has_text="bench-rig: shaking").get_attribute("value")
    viewer.get_by_label("sample").select_option(recorded)
    expect(viewer.locator("figcaption")).to_have_text("bench-rig, shaking: the window's signal")
    drawn = page.evaluate(
        "(({ config }) => [config.type, config.data.datasets.map((d) => d.data.length)])"
        "(Chart.getChart(document.querySelector('section.viewer canvas')))"
    )
    viewer.get_by_label("sample").select_option(
        viewer.locator("option", has_text="edge-2: normal").first.get_attribute("value")
    )
    expect(viewer.locator("figcaption")).to_contain_text("edge-2, normal: the window's features")

    assert drawn == ["line", [RAW_WINDOW]]
    assert fleet.client.device("edge-2").desired.collect is None


RAW_WINDOW = 50


def _raw_recording() -> SampleImport:
    spec = InputSpec(
        sensors=["level"],
        rate_hz=50.0,
        window=RAW_WINDOW,
        hop=RAW_WINDOW,
        extractors=[FeatureSpec(kind="raw", params={"size": RAW_WINDOW})],
        features=[f"level.s{i}" for i in range(RAW_WINDOW)],
    )
    signal = [math.sin(2 * math.pi * 3 * i / 50) for i in range(RAW_WINDOW)]
    sample = DataSample(at=datetime.now(UTC), label="shaking", features=signal)
    return SampleImport(batch_id=uuid.uuid4(), device_id="bench-rig", spec=spec, samples=[sample])


def test_an_operator_steers_a_device_from_its_page(page: "Page", fleet: LocalFleet) -> None:
    _log_in(page, fleet.admin_token)
    page.goto("/#/devices/edge-2")
    app = page.locator("tr[data-field='app'] td.reported")
    model = page.locator("tr[data-field='model'] td.reported")
    expect(model).to_have_text("motor v1", timeout=WAIT_MS)

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(app).to_have_text("stopped", timeout=WAIT_MS)
    page.get_by_role("button", name="Start", exact=True).click()
    expect(app).to_have_text("running", timeout=WAIT_MS)

    fault = page.get_by_role("form", name="Inject a fault (simulated sources)")
    fault.get_by_label("Kind").fill("Bearing Wear")
    fault.get_by_role("button", name="Inject").click()
    expect(page.get_by_role("status")).to_contain_text("fault.kind: String should match")
    expect(page.get_by_role("status")).to_have_class(re.compile("error"))
    fault.get_by_label("Kind").fill("bearing_wear")
    fault.get_by_label("Severity").fill("0.5")
    fault.get_by_role("button", name="Inject").click()
    injected = page.locator("tr[data-field='fault-injected'] td.desired")
    expect(injected).to_contain_text("bearing_wear (severity 0.5", timeout=WAIT_MS)
    fault.get_by_role("button", name="Clear fault").click()
    expect(injected).to_have_text("none", timeout=WAIT_MS)

    interval = page.get_by_role("form", name="Telemetry")
    interval.get_by_label("Interval (s)").fill("2")
    interval.get_by_role("button", name="Set interval").click()
    expect(page.locator("tr[data-field='telemetry-every'] td.desired")).to_have_text("2 s")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Undeploy model").click()
    expect(model).to_have_text("none", timeout=WAIT_MS)

    assert fleet.client.device("edge-2").desired.bundle is None


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    """A hub of its own holding CROWD devices, enrolled through its API with no agent."""
    with LocalFleet(tmp_path_factory.mktemp("crowd"), []) as hub:
        hub.start_hub()
        hardware = Hardware(cores=1, ram_mb=256, arch="armv7l", providers=[])
        with httpx.Client(base_url=hub.hub_url) as http:
            for i in range(CROWD):
                enrol = EnrolRequest(
                    device_id=f"crowd-{i:02d}", enrol_token=hub.enrol_token, hardware=hardware
                )
                http.post("/api/v1/enrol", json=enrol.model_dump(mode="json")).raise_for_status()
        yield hub


def _pages_of(size: int) -> "Callable[[Route], None]":
    """Asks the hub for devices `size` at a time, whatever limit the page asks for, so a few
    devices span many pages: the hub's own answers then say where each next one starts."""

    def limited(route: "Route") -> None:
        url = httpx.URL(route.request.url).copy_set_param("limit", size)
        route.continue_(url=str(url))

    return limited


DEVICE_LISTING = re.compile(r"/api/v1/devices(\?.*)?$")


def test_the_fleet_page_follows_every_page_of_devices(
    browser: "Browser", crowd: LocalFleet, request: pytest.FixtureRequest
) -> None:
    with dashboard(browser, crowd.hub_url, request.node.name) as page:
        page.route(DEVICE_LISTING, _pages_of(7))
        _log_in(page, crowd.admin_token)

        expect(page.locator(".summary")).to_have_text(
            f"{CROWD} devices, 0 running a model, 0 open alerts", timeout=WAIT_MS
        )
        expect(page.locator("tr[data-device]")).to_have_count(CROWD)
        expect(page.locator(f"tr[data-device='crowd-{CROWD - 1:02d}']")).to_be_visible()
        expect(page.locator(".partial:visible")).to_have_count(0)


def test_the_fleet_page_says_so_when_it_stops_short_of_the_last_page(
    browser: "Browser", crowd: LocalFleet, request: pytest.FixtureRequest
) -> None:
    assert CROWD > MAX_PAGES  # one device a page: more pages than the dashboard follows
    with dashboard(browser, crowd.hub_url, request.node.name) as page:
        page.route(DEVICE_LISTING, _pages_of(1))
        _log_in(page, crowd.admin_token)

        expect(page.locator(".summary")).to_have_text(
            f"at least {MAX_PAGES} devices, 0 running a model, 0 open alerts", timeout=WAIT_MS
        )
        expect(page.locator("tr[data-device]")).to_have_count(MAX_PAGES)
        expect(page.get_by_role("note")).to_have_text(
            f"Only the first {MAX_PAGES} devices are shown: the hub holds more."
        )
