"""The fleet simulator on the command line: its summary, the transports it takes."""

import pytest

from edgestack.cli.simulate import summary_listing
from edgestack.fleetsim import SimSummary, transport_scheme


def test_the_summary_names_what_was_sent_acked_and_failed_and_the_latencies() -> None:
    summary = SimSummary(
        devices=10,
        devices_up=9,
        enrolled=10,
        duration_s=4.0,
        reports_sent=40,
        reports_acked=37,
        reports_duplicate=0,
        reports_failed=3,
        reports_per_s=9.25,
        ingest_p50_ms=12.5,
        ingest_p99_ms=80.25,
        events_sent=2,
        events_acked=2,
        desired_changes=9,
        bundles_downloaded=9,
        errors={"HubUnavailable": 3},
        desired_seen_at=[],
    )

    rows = dict(summary_listing(summary).cells)

    assert rows["devices up"] == "9/10 (10 enrolled)"
    assert rows["reports sent / acked / failed"] == "40 / 37 / 3"
    assert rows["ingest latency p50 / p99"] == "12.5 ms / 80.2 ms"
    assert rows["errors"] == "3 HubUnavailable"


def test_a_run_without_acked_reports_has_no_latency() -> None:
    summary = SimSummary(
        devices=1,
        devices_up=0,
        enrolled=0,
        duration_s=1.0,
        reports_sent=0,
        reports_acked=0,
        reports_duplicate=0,
        reports_failed=0,
        reports_per_s=0.0,
        ingest_p50_ms=None,
        ingest_p99_ms=None,
        events_sent=0,
        events_acked=0,
        desired_changes=0,
        bundles_downloaded=0,
        errors={},
        desired_seen_at=[],
    )

    rows = dict(summary_listing(summary).cells)

    assert rows["ingest latency p50 / p99"] == "- / -"
    assert rows["errors"] == "-"


@pytest.mark.parametrize("transport", ["mqtt", "tcp://127.0.0.1:1883", "mqtt://:1883", "https"])
def test_a_transport_of_no_known_form_is_refused_naming_the_forms(transport: str) -> None:
    with pytest.raises(ValueError, match=r"write http, or mqtt://host:port"):
        transport_scheme(transport)


def test_a_broker_address_picks_the_mqtt_transport() -> None:
    assert transport_scheme("mqtt://127.0.0.1:1883") == "mqtt"
    assert transport_scheme("http") == "http"
