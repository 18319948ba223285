from datetime import UTC, datetime

import numpy as np

from edgestack.agent.recent import RecentWindows, hard_first

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_newest_windows_are_kept_and_the_least_confident_come_first() -> None:
    recent = RecentWindows(size=10)
    rng = np.random.default_rng(0)
    confidences = []
    for call in range(12):  # 24 windows, two a call
        rows = rng.normal(size=(2, 3)).astype(np.float32)
        sure = np.array([0.5 + call / 100, 0.9], dtype=np.float32)
        confidences.append(sure)
        recent.add(AT, rows, ["normal", "worn"], sure)

    chosen = recent.least_confident(4)

    assert 10 <= len(recent) <= 11  # the newest 10, and the rest of the call that holds them
    assert [w.confidence for w in chosen] == sorted(w.confidence for w in chosen)
    # the least confident windows of the last calls, not of the forgotten first ones
    assert min(w.confidence for w in chosen) >= float(confidences[6][0]) - 1e-6
    assert {w.predicted for w in chosen} == {"normal"}


def test_windows_the_hub_would_refuse_are_left_out_and_clear_forgets_all() -> None:
    recent = RecentWindows()
    rows = np.array([[1.0, np.nan], [1.0, 2.0]], dtype=np.float32)
    recent.add(AT, rows, ["normal", "worn"], np.array([0.1, 0.8], dtype=np.float32))

    kept = recent.least_confident(10)
    recent.clear()

    assert [(w.predicted, w.features) for w in kept] == [("worn", [1.0, 2.0])]
    assert len(recent) == 0 and recent.least_confident(10) == []


def test_hard_windows_come_first_then_the_least_confident_others_none_twice() -> None:
    recent, hard = RecentWindows(), RecentWindows()
    rows = np.arange(12, dtype=np.float32).reshape(6, 2)
    sure = np.array([0.2, 0.3, 0.9, 0.95, 0.4, 0.99], dtype=np.float32)
    labels = ["normal"] * 6
    recent.add(AT, rows, labels, sure)
    # The gate (a margin, say) found windows 3 and 5 hard, though they are sure of their label.
    hard.add(AT, rows[[3, 5]], ["normal", "normal"], sure[[3, 5]])

    chosen = hard_first(hard, recent, 4)
    alone = hard_first(RecentWindows(), recent, 2)

    assert [w.features for w in chosen] == [[6.0, 7.0], [10.0, 11.0], [0.0, 1.0], [2.0, 3.0]]
    assert [w.features for w in hard_first(hard, recent, 1)] == [[6.0, 7.0]]
    assert [w.features for w in hard_first(hard, recent, 10)][2:] == [
        [0.0, 1.0], [2.0, 3.0], [8.0, 9.0], [4.0, 5.0]
    ]  # fmt: skip
    assert alone == recent.least_confident(2)
