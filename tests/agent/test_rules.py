from datetime import UTC, datetime

import numpy as np

from edgestack.agent.rules import AlarmRule
from edgestack.protocol import RuleParams

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def feed(rule: AlarmRule, labels: list[str], confidence: float = 0.9) -> list[tuple[str, str]]:
    events = rule.update(labels, np.full(len(labels), confidence), NOW, None)
    return [(e.kind, e.label or "") for e in events]


def test_alarm_needs_trigger_windows_in_a_row() -> None:
    rule = AlarmRule(RuleParams(trigger_windows=3, clear_windows=2))

    assert feed(rule, ["wear", "wear", "normal", "wear", "wear"]) == []
    assert feed(rule, ["wear"]) == [("alarm_raised", "wear")]
    assert rule.active == "wear"
    assert feed(rule, ["wear", "wear"]) == []


def test_alarm_clears_after_clear_windows_of_normal() -> None:
    rule = AlarmRule(RuleParams(trigger_windows=2, clear_windows=3))
    feed(rule, ["wear", "wear"])

    assert feed(rule, ["normal", "normal", "wear", "normal", "normal"]) == []
    assert feed(rule, ["normal"]) == [("alarm_cleared", "wear")]
    assert rule.active is None


def test_unsure_windows_do_not_raise() -> None:
    rule = AlarmRule(RuleParams(trigger_windows=2, min_confidence=0.8))

    assert feed(rule, ["wear"] * 10, confidence=0.6) == []
    assert feed(rule, ["wear"] * 2, confidence=0.85) == [("alarm_raised", "wear")]


def test_a_different_fault_raises_its_own_alarm() -> None:
    rule = AlarmRule(RuleParams(trigger_windows=2))
    feed(rule, ["wear", "wear"])

    assert feed(rule, ["imbalance", "wear", "imbalance", "imbalance"]) == [
        ("alarm_raised", "imbalance")
    ]
