"""Listings stay readable at 80 columns: no value cut or broken, what is hidden said."""

import io
import re
from datetime import UTC, datetime

import pytest
from rich.console import Console

from edgestack.bundle import Bundle, Footprint, Lineage
from edgestack.cli.alerts import accuracy_listing, alerts_listing, rules_listing
from edgestack.cli.common import Listing
from edgestack.cli.data import datasets_listing
from edgestack.cli.fleet import (
    devices_listing,
    drift_listing,
    events_listing,
    models_listing,
    monitoring_listing,
    profiles_listing,
)
from edgestack.hub.store.alerts import DEFAULT_RULES
from edgestack.processing import vibration_spec
from edgestack.profiles import PROFILES
from edgestack.protocol import (
    AccuracyView,
    AlertView,
    BundleRef,
    DatasetSummary,
    DesiredState,
    DeviceView,
    Event,
    EventView,
    Hardware,
    ModelView,
    ReportedState,
    SampleCounts,
    TelemetryTotals,
)

AT = datetime(2026, 11, 30, 12, 30, 1, tzinfo=UTC)
DIGEST = "ab" * 32
LABELS = ["normal", "imbalance", "bearing_wear", "misalignment"]


def _device() -> DeviceView:
    hardware = Hardware(cores=4, ram_mb=4096, arch="aarch64", providers=["CPUExecutionProvider"])
    return DeviceView(
        device_id="press-line-4-motor-12",
        enrolled_at=AT,
        last_seen=AT,
        desired=DesiredState(),
        reported=ReportedState(
            desired_version=3,
            bundle=BundleRef(name="motor-faults", version=12, digest=DIGEST),
            status="collecting",
            hardware=hardware,
        ),
        telemetry=TelemetryTotals(
            windows=1234567,
            predictions={"normal": 1234000},
            latest_predictions={"normal": 38, "worn": 2},
            bad_input={"nan": 3, "time_backwards": 12, "wrong_channel_count": 1},
            raw_bytes=10**9,
            uplink_bytes=10**6,
            p50_ms=0.41,
            p95_ms=2.27,
            p99_ms=12.3,
            throughput=3.9,
            cpu_share=0.173,
            rss_bytes=97 * 2**20,
            anomaly_max=4.25,
            changes={"confidence": 2, "anomaly": 1},
            drift_windows=128,
            drift_psi=0.314,
            drift_ks=0.2,
            drift_psi_by_feature={f"accel_{a}.band{i}": 0.03 * i for a in "xyz" for i in range(8)},
            drift_ks_by_feature={f"accel_{a}.band{i}": 0.02 * i for a in "xyz" for i in range(8)},
        ),
        profile="pi",
        tags={"site": "plant-4", "line": "2"},
    )


def _model() -> ModelView:
    bundle = Bundle.create(
        name="motor-faults-line-4",
        version=12,
        labels=LABELS,
        input=vibration_spec(),
        model=b"onnx",
        metrics={"accuracy": 0.987},
        # Optimised from a version not listed, fitting every profile: its widest cells.
        footprint=Footprint(
            model_bytes=1, peak_ram_bytes=1, latency_ms_p50=0.001, latency_ms_p99=0.001
        ),
        lineage=Lineage(trainer="mlp", parent="cd" * 32, optimisation="int8_static"),
    )
    return ModelView(
        name="motor-faults-line-4",
        version=12,
        digest=DIGEST,
        size_bytes=123_456,
        registered_at=AT,
        manifest=bundle.manifest,
    )


def _event() -> EventView:
    event = Event(
        event_id="12345678-1234-5678-1234-567812345678",
        at=AT,
        kind="alarm_raised",
        severity="critical",
        label="bearing_wear",
        message="bearing_wear in 4 windows in a row (mean confidence 0.93); check the bearing",
    )
    return EventView(id=123456, device_id="press-line-4-motor-12", received_at=AT, event=event)


def _dataset() -> DatasetSummary:
    counts = SampleCounts(
        total=123456,
        labels={label: 30864 for label in LABELS},
        splits={"train": 92592, "test": 30864},
    )
    return DatasetSummary(name="line-4-motors", counts=counts, versions=3, latest=3)


def _alert() -> AlertView:
    return AlertView(
        id=123456,
        device_id="press-line-4-motor-12",
        signal="estimated_accuracy",
        state="cleared",
        bundle_digest=DIGEST,
        model="motor-faults-line-4",
        version=12,
        first_value=0.7812345,
        worst_value=0.6512345,
        last_value=0.9112345,
        raised_at=AT,
        cleared_at=AT,
    )


def _accuracy() -> AccuracyView:
    return AccuracyView(
        device_id="press-line-4-motor-12",
        bundle_digest=DIGEST,
        model="motor-faults-line-4",
        version=12,
        accuracy=0.9512,
        labelled_windows=1234567,
        estimated_accuracy=0.9433,
        estimated_windows=12345678,
    )


LISTINGS = {
    "alerts": alerts_listing([_alert()]),
    "alerts rules": rules_listing(list(DEFAULT_RULES.values())),
    "accuracy": accuracy_listing([_accuracy()]),
    "devices": devices_listing([_device()]),
    "devices show, monitoring": monitoring_listing(_device()),
    "devices show, drift": drift_listing(_device()),
    "models": models_listing([_model()]),
    "events": events_listing([_event()]),
    "profiles": profiles_listing(list(PROFILES.values())),
    "data list": datasets_listing([_dataset()]),
}
EMPTY_LISTINGS = {
    "alerts": alerts_listing([]),
    "accuracy": accuracy_listing([]),
    "devices": devices_listing([]),
    "models": models_listing([]),
    "events": events_listing([]),
    "data list": datasets_listing([]),
}


def _render(listing: Listing, width: int) -> str:
    to = Console(width=width, record=True, file=io.StringIO())
    to.print(listing.render(to))
    return to.export_text()


@pytest.mark.parametrize("name", LISTINGS)
def test_a_listing_at_80_columns_shows_each_value_whole_or_says_it_is_hidden(name: str) -> None:
    listing = LISTINGS[name]

    text = _render(listing, 80)

    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text
    words = " ".join(text.split())
    hidden = re.search(r"hidden to fit: (.*) \(--json\)", words)
    hidden_columns = hidden.group(1).split(", ") if hidden else []
    assert set(hidden_columns) <= set(listing.hide_first)
    for row in listing.cells:
        for header, value in zip(listing.headers, row, strict=True):
            if header in hidden_columns:
                continue
            if header in listing.wrap:
                # Wrapped between words: every word of it is there, whole.
                assert all(word in text for word in value.split()), (header, value)
            else:
                assert any(value in line for line in lines), (header, value)
    for header in listing.headers:
        if header not in hidden_columns:
            assert header in words, header


@pytest.mark.parametrize("name", LISTINGS)
def test_a_wide_terminal_shows_every_column(name: str) -> None:
    text = _render(LISTINGS[name], 200)

    assert "hidden to fit" not in text
    assert all(header in text for header in LISTINGS[name].headers)


@pytest.mark.parametrize("name", EMPTY_LISTINGS)
def test_an_empty_listing_shows_its_headers_at_80_columns(name: str) -> None:
    listing = EMPTY_LISTINGS[name]

    text = _render(listing, 80)

    assert max(len(line) for line in text.splitlines()) <= 80
    shown = [header for header in listing.headers if header not in listing.hide_first]
    assert all(header in text for header in shown)
