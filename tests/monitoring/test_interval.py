import time

import numpy as np
import pytest

from edgestack.monitoring import CONFIDENCE_BINS, Interval, LatencyHistogram


def test_quantiles_are_read_within_a_bucket_of_the_true_ones() -> None:
    latencies = np.random.default_rng(0).lognormal(np.log(2e-4), 0.6, 20_000)
    histogram = LatencyHistogram()

    histogram.add(latencies)

    for q in (0.5, 0.95, 0.99):
        true = np.quantile(latencies, q)
        assert true <= histogram.quantile(q) <= true * 1.13  # buckets are 12 % apart


def test_histograms_merge_and_travel_as_their_non_empty_buckets() -> None:
    rng = np.random.default_rng(1)
    a, b, whole = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    first, second = rng.uniform(1e-4, 1e-3, 300), rng.uniform(1e-2, 2e-2, 100)
    a.add(first)
    b.add(second)
    whole.add(np.concatenate([first, second]))

    a.merge(LatencyHistogram.from_sparse(b.sparse()))

    assert (a.counts == whole.counts).all()
    assert a.total == 400
    assert len(a.sparse()) < 40  # compact: only the buckets the values fell in


def test_latencies_beyond_the_range_count_in_the_end_buckets() -> None:
    histogram = LatencyHistogram()

    histogram.add(np.array([0.0, 1e-9, 60.0]))

    assert histogram.counts[0] == 2 and histogram.counts[-1] == 1
    assert histogram.quantile(1.0) == pytest.approx(10.0)


def test_an_empty_histogram_has_no_quantile_and_bad_input_is_refused() -> None:
    histogram = LatencyHistogram()

    assert np.isnan(histogram.quantile(0.5))
    with pytest.raises(ValueError, match="latencies must be finite and >= 0"):
        histogram.add(np.array([1e-3, np.nan]))
    with pytest.raises(ValueError, match="q: expected a share"):
        histogram.quantile(1.5)
    with pytest.raises(ValueError, match="bucket 140"):
        LatencyHistogram.from_sparse({140: 1})


def test_an_interval_summarises_throughput_latency_classes_and_confidence() -> None:
    interval = Interval(["ok", "worn", "broken"], now=100.0)
    probabilities = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.34, 0.33, 0.33]])
    for latency in (1e-3, 2e-3):
        interval.add(latency, probabilities)

    summary = interval.take(now=110.0)

    assert summary.seconds == 10.0 and summary.predictions == 6
    assert summary.throughput == pytest.approx(0.6)
    assert summary.classes == {"ok": 4, "worn": 2, "broken": 0}
    assert len(summary.confidence) == CONFIDENCE_BINS and sum(summary.confidence) == 6
    assert summary.confidence[9] == 2 and summary.confidence[7] == 2
    assert summary.confidence[3] == 2
    assert 1.0 <= summary.p50_ms <= 1.13 and 2.0 <= summary.p99_ms <= 2.26


def test_an_interval_counts_the_cpu_time_and_memory_of_the_process() -> None:
    interval = Interval(["a"], now=0.0)
    held = np.ones(20_000_000 // 8)  # 20 MB, resident while the interval is taken
    spent = 0.0
    start = time.process_time()
    while time.process_time() - start < 0.05:  # bounded: about 50 ms of CPU
        spent += float(np.sqrt(held[:1000]).sum())

    summary = interval.take(now=1.0)

    assert summary.cpu_s >= 0.05
    assert summary.rss_bytes > held.nbytes and spent > 0
    assert interval.take(now=2.0).cpu_s < summary.cpu_s  # a new interval counts afresh


def test_take_starts_the_next_interval_empty() -> None:
    interval = Interval(["a", "b"], now=0.0)
    interval.add(1e-3, np.array([[0.4, 0.6]]))
    interval.take(now=1.0)

    summary = interval.take(now=3.0)

    assert summary.seconds == 2.0 and summary.predictions == 0
    assert summary.classes == {"a": 0, "b": 0} and np.isnan(summary.p99_ms)


def test_probabilities_of_another_width_are_refused() -> None:
    with pytest.raises(ValueError, match=r"probabilities: expected \(k, 2\), got \(1, 3\)"):
        Interval(["a", "b"]).add(1e-3, np.array([[0.2, 0.3, 0.5]]))


def test_probabilities_with_nan_count_in_the_lowest_confidence_bin_and_never_raise() -> None:
    interval = Interval(["a", "b"], now=0.0)

    interval.add(1e-3, np.array([[np.nan, np.nan], [0.1, 0.9]]))
    summary = interval.take(now=1.0)

    assert summary.predictions == 2
    assert summary.confidence[0] == 1 and summary.confidence[9] == 1


def test_calls_counted_at_once_sum_up_as_one_by_one() -> None:
    rng = np.random.default_rng(4)
    calls = [rng.dirichlet(np.ones(3), size=k) for k in (1, 3, 1, 2)]
    calls[1][0] = [np.nan, 0.5, 0.5]
    latencies = rng.uniform(1e-4, 1e-2, len(calls))
    one_by_one, at_once = Interval(["a", "b", "c"], now=0.0), Interval(["a", "b", "c"], now=0.0)
    for latency, probabilities in zip(latencies.tolist(), calls, strict=True):
        one_by_one.add(latency, probabilities)

    at_once.add_calls(latencies, np.concatenate(calls))

    first, second = one_by_one.take(now=1.0), at_once.take(now=1.0)
    assert first.confidence == second.confidence and sum(second.confidence) == 7
    assert (first.latency.counts == second.latency.counts).all()
    assert first.classes == second.classes and sum(second.classes.values()) == 7
