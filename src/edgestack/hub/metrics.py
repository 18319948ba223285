"""The fleet in Prometheus' text format, built from the database at each scrape.

Nothing here counts in memory: every value is read from what the hub stored, so any number
of hub processes on one database answer a scrape alike, and a restart loses nothing. A
device's series carry `device` and `model`, the model it reports running ("" when none);
counters are the device's totals since it enrolled, gauges of latency and confidence those of
its latest telemetry batch. Each scrape reads one row per device and counts events by kind
and open alerts by device and signal; accuracy, live and estimated, is read from every stored
telemetry batch and roll-up per device and model version; retention's counts from its totals.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import get_args

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edgestack.hub.store import alerts, feedback, retention, utcnow
from edgestack.hub.store.tables import DeviceRow, EventRow
from edgestack.protocol import ReportedState, TelemetryTotals

__all__ = ["STATUSES", "FleetCollector", "exposition"]

STATUSES: tuple[str, ...] = (*get_args(ReportedState.model_fields["status"].annotation), "silent")
"""A device's status in `edgestack_device_status`: as it reported it, or silent if it never did."""

_DEVICE = ["device", "model"]


def exposition(session: Session) -> bytes:
    """The fleet's metrics as of now, in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(session))
    return generate_latest(registry)


class FleetCollector(Collector):
    """Reads the fleet's metrics from the hub's tables through `session` when collected."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        families = _DeviceFamilies()
        for row in self._session.scalars(select(DeviceRow).order_by(DeviceRow.device_id)):
            families.add(row, now)
        yield from families
        yield _events(self._session)
        yield from _alerts_and_accuracy(self._session)
        yield from _retention(self._session)


class _DeviceFamilies:
    def __init__(self) -> None:
        def counter(name: str, doc: str, *labels: str) -> CounterMetricFamily:
            return CounterMetricFamily(f"edgestack_{name}", doc, labels=[*_DEVICE, *labels])

        def gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"edgestack_{name}", doc, labels=[*_DEVICE, *labels])

        self.windows = counter("windows", "Windows the device's model ran on.")
        self.predictions = counter("predictions", "Windows predicted, per label.", "label")
        self.bad_input = counter("bad_input", "Bad input counted, per reason.", "reason")
        self.failed_chunks = counter("failed_chunks", "Chunks whose steps or model raised.")
        self.outbox_dropped = counter("outbox_dropped", "Messages the full outbox dropped.")
        self.dead_lettered = counter("dead_lettered", "Messages the hub refused for good.")
        self.uplink = counter("uplink_bytes", "Bytes the device sent to the hub.")
        self.latency = gauge(
            "latency_ms", "Inference latency per window in its latest telemetry.", "quantile"
        )
        self.confidence = gauge(
            "mean_confidence", "Mean confidence of the predictions in its latest telemetry."
        )
        self.call_latency = gauge(
            "call_latency_ms",
            "Latency per model call in its latest monitoring report.",
            "quantile",
        )
        self.throughput = gauge("throughput", "Windows predicted per second, latest monitoring.")
        self.cpu = gauge("cpu_share", "CPU time of the agent over its latest interval, in cores.")
        self.rss = gauge("rss_bytes", "Resident memory of the agent, latest monitoring.")
        self.drift_psi = gauge(
            "drift_psi",
            "Largest input-drift PSI over features, rolled over enough recent windows.",
        )
        self.drift_ks = gauge("drift_ks", "Largest input-drift KS distance over features.")
        self.feature_psi = gauge(
            "feature_drift_psi", "Input-drift PSI of one feature, rolled likewise.", "feature"
        )
        self.drift_windows = gauge("drift_windows", "Windows the rolling drift covers.")
        self.anomaly = gauge(
            "anomaly_score", "Largest sensor-stream anomaly score in its latest monitoring."
        )
        self.changes = counter("changes", "Change-detector alarms, per watched signal.", "signal")
        self.offloaded = counter(
            "offloaded_windows", "Windows the offload policy's gate sent to a server."
        )
        self.offload_answered = counter(
            "offload_answered", "Offloaded windows a tier's answer counted for, per tier.", "tier"
        )
        self.offload_fallbacks = counter(
            "offload_fallbacks", "Offloaded windows left to the device's own answer."
        )
        self.offload_uplink = counter(
            "offload_uplink_bytes", "Bytes the device's offload requests to servers took."
        )
        self.outbox_pending = gauge(
            "outbox_pending", "Messages waiting in the device's outbox at its latest cut."
        )
        self.last_seen = gauge("last_seen_age_seconds", "Seconds since the device was last heard.")
        self.versions = gauge(
            "state_version",
            "Desired-state version the hub holds (desired) and the device applied (reported).",
            "side",
        )
        self.bundles = gauge(
            "bundle_version",
            "Model version desired for the device and the one it reports running.",
            "side",
            "bundle",
        )
        self.status = gauge(
            "device_status", "1 for the device's status, 0 for the others.", "status"
        )

    def add(self, row: DeviceRow, now: datetime) -> None:
        reported = None if row.reported is None else ReportedState.model_validate(row.reported)
        model = reported.bundle.name if reported and reported.bundle else ""
        key = [row.device_id, model]
        totals = TelemetryTotals.model_validate(row.telemetry)
        self.windows.add_metric(key, totals.windows)
        for label, n in sorted(totals.predictions.items()):
            self.predictions.add_metric([*key, label], n)
        for reason, n in sorted(totals.bad_input.items()):
            self.bad_input.add_metric([*key, reason], n)
        self.failed_chunks.add_metric(key, totals.failed_chunks)
        self.outbox_dropped.add_metric(key, totals.outbox_dropped)
        self.dead_lettered.add_metric(key, totals.dead_lettered)
        self.uplink.add_metric(key, totals.uplink_bytes)
        for quantile, value in (("0.5", totals.latency_ms_p50), ("0.95", totals.latency_ms_p95)):
            if value is not None:
                self.latency.add_metric([*key, quantile], value)
        if totals.mean_confidence is not None:
            self.confidence.add_metric(key, totals.mean_confidence)
        self._add_monitoring(key, totals)
        self.offloaded.add_metric(key, totals.offloaded)
        for tier, n in sorted(totals.offload_answered.items()):
            self.offload_answered.add_metric([*key, tier], n)
        self.offload_fallbacks.add_metric(key, totals.offload_fallbacks)
        self.offload_uplink.add_metric(key, totals.offload_uplink_bytes)
        self.outbox_pending.add_metric(key, totals.outbox_pending)
        if row.last_seen is not None:
            self.last_seen.add_metric(key, max(0.0, (now - row.last_seen).total_seconds()))
        self.versions.add_metric([*key, "desired"], row.desired_version)
        if reported is not None:
            self.versions.add_metric([*key, "reported"], reported.desired_version)
        desired_bundle = row.desired.get("bundle")
        if desired_bundle:
            self.bundles.add_metric(
                [*key, "desired", desired_bundle["name"]], desired_bundle["version"]
            )
        if reported and reported.bundle:
            self.bundles.add_metric([*key, "reported", model], reported.bundle.version)
        status = reported.status if reported else "silent"
        for name in STATUSES:
            self.status.add_metric([*key, name], 1 if name == status else 0)

    def _add_monitoring(self, key: list[str], totals: TelemetryTotals) -> None:
        quantiles = (("0.5", totals.p50_ms), ("0.95", totals.p95_ms), ("0.99", totals.p99_ms))
        for quantile, value in quantiles:
            if value is not None:
                self.call_latency.add_metric([*key, quantile], value)
        gauges = (
            (self.throughput, totals.throughput),
            (self.cpu, totals.cpu_share),
            (self.rss, totals.rss_bytes),
            (self.drift_psi, totals.drift_psi),
            (self.drift_ks, totals.drift_ks),
            (self.anomaly, totals.anomaly_max),
        )
        for family, number in gauges:
            if number is not None:
                family.add_metric(key, number)
        self.drift_windows.add_metric(key, totals.drift_windows)
        for feature, score in sorted(totals.drift_psi_by_feature.items()):
            self.feature_psi.add_metric([*key, feature], score)
        for signal, n in sorted(totals.changes.items()):
            self.changes.add_metric([*key, signal], n)

    def __iter__(self) -> Iterator[Metric]:
        # Every attribute is a family; a family added in __init__ is thereby exposed.
        return iter(vars(self).values())


def _events(session: Session) -> CounterMetricFamily:
    kind = EventRow.event["kind"].as_string()
    family = CounterMetricFamily(
        "edgestack_events",
        "Events stored, per device (empty for the hub's own) and kind.",
        labels=["device", "kind"],
    )
    rows = session.execute(
        select(EventRow.device_id, kind, func.count())
        .group_by(EventRow.device_id, kind)
        .order_by(EventRow.device_id, kind)
    )
    for device_id, event_kind, n in rows:
        family.add_metric([device_id or "", event_kind or ""], n)
    return family


def _alerts_and_accuracy(session: Session) -> Iterator[Metric]:
    open_alerts = GaugeMetricFamily(
        "edgestack_alerts_open", "Alerts raised and not yet cleared.", labels=["device", "signal"]
    )
    for (device_id, signal), n in sorted(alerts.open_counts(session).items()):
        open_alerts.add_metric([device_id, signal], n)
    yield open_alerts
    labels = ["device", "model", "version"]
    live = GaugeMetricFamily(
        "edgestack_accuracy", "Accuracy on the windows feedback labelled.", labels=labels
    )
    estimated = GaugeMetricFamily(
        "edgestack_estimated_accuracy",
        "Accuracy expected from calibrated confidences, labels or not.",
        labels=labels,
    )
    for row in feedback.accuracy(session):
        # A bundle the registry does not know is named by its digest's start.
        key = [row.device_id, row.model or row.bundle_digest[:12], str(row.version or "")]
        if row.accuracy is not None:
            live.add_metric(key, row.accuracy)
        if row.estimated_accuracy is not None:
            estimated.add_metric(key, row.estimated_accuracy)
    yield live
    yield estimated


def _retention(session: Session) -> Iterator[Metric]:
    rows = CounterMetricFamily(
        "edgestack_retention_rows",
        "Rows retention took out of each table past its age: telemetry batches rolled up "
        "by device and hour, then removed; the rest removed.",
        labels=["table", "action"],
    )
    last = GaugeMetricFamily(
        "edgestack_retention_last_run_timestamp_seconds", "When retention last ran."
    )
    totals = retention.totals(session)
    for name in retention.TABLES:
        action = "rolled_up" if name == "telemetry_batches" else "removed"
        rows.add_metric([name, action], totals[name].removed if name in totals else 0)
    yield rows
    if totals:
        last.add_metric([], max(row.last_run_at for row in totals.values()).timestamp())
    yield last
