"""The alarm rules an app spec sets are the ones its device applies and reports."""

from pathlib import Path

import pytest

from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import DesiredPatch, DeviceView, RuleParams

pytestmark = pytest.mark.integration

APP = """
name: gait-watch
sources: [{kind: imu, params: {activity: walk}}]
window: 100
hop: 100
extractors: [{kind: time_stats}]
rules: {normal_label: walk, trigger_windows: 2}
"""


def _reporting(fleet: LocalFleet, rules: RuleParams) -> DeviceView | None:
    """The device's view once it reports `rules`; None before, enrolled or not."""
    views = [v for v in fleet.client.devices() if v.reported and v.reported.rules == rules]
    return views[0] if views else None


def test_the_device_applies_and_reports_its_apps_rules_until_the_operator_overrides_them(
    tmp_path: Path,
) -> None:
    app = tmp_path / "gait.yaml"
    app.write_text(APP)
    own = RuleParams(normal_label="walk", trigger_windows=2)
    override = RuleParams(normal_label="walk", trigger_windows=6, min_confidence=0.9)
    with LocalFleet(tmp_path, ["wrist-1"]) as fleet:
        fleet.start_hub()
        fleet.start_agent("wrist-1", app=app)

        first = wait_until(lambda: _reporting(fleet, own), timeout_s=60, what="the app's rules")
        fleet.client.update_desired("wrist-1", DesiredPatch(rules=override))
        overridden = wait_until(
            lambda: _reporting(fleet, override), timeout_s=60, what="the operator's rules"
        )
        fleet.client.update_desired("wrist-1", DesiredPatch(rules=None))
        cleared = wait_until(
            lambda: _reporting(fleet, own), timeout_s=60, what="the app's rules again"
        )

    assert first.desired.rules is None
    assert overridden.desired.rules == override
    assert cleared.desired.rules is None
    assert cleared.desired.version == 2
