import numpy as np
import pytest

from edgestack.sensing import Quality
from edgestack.sensing.live._payload import Rows, units_for

CHANNELS = ("temperature", "humidity")


def _rows(*, merge: bool, capacity: int = 100) -> Rows:
    return Rows(CHANNELS, ("degC", "%"), 1.0, capacity, merge=merge)


def test_readings_at_the_same_time_share_a_row_until_it_is_read() -> None:
    rows, quality = _rows(merge=True), Quality()

    rows.add(10.0, [0], [21.0], quality)
    rows.add(10.0, [1], [40.0], quality)
    first = rows.take(10)
    rows.add(10.0, [0], [22.0], quality)
    second = rows.take(10)

    np.testing.assert_array_equal(first.timestamps, [10.0])
    np.testing.assert_array_equal(first.data, [[21.0], [40.0]])
    np.testing.assert_array_equal(second.timestamps, [10.0])
    np.testing.assert_array_equal(second.data, [[22.0], [40.0]])


def test_without_merging_every_reading_is_a_row() -> None:
    rows, quality = _rows(merge=False), Quality()

    rows.add(10.0, [0, 1], [21.0, 40.0], quality)
    rows.add(10.0, [0, 1], [22.0, 41.0], quality)
    chunk = rows.take(10)

    np.testing.assert_array_equal(chunk.data, [[21.0, 22.0], [40.0, 41.0]])


def test_a_full_buffer_drops_its_oldest_rows_and_counts_them() -> None:
    rows, quality = _rows(merge=False, capacity=3), Quality()

    for t in range(5):
        rows.add(float(t), [0, 1], [t, t], quality)
    chunk = rows.take(10)

    np.testing.assert_array_equal(chunk.timestamps, [2.0, 3.0, 4.0])
    assert quality.take()[0] == {"buffer_overflow": 2}


def test_reads_take_at_most_n_rows_oldest_first() -> None:
    rows, quality = _rows(merge=False), Quality()
    for t in range(5):
        rows.add(float(t), [0], [t], quality)

    sizes = [rows.take(2).n, rows.take(2).n, rows.take(2).n, rows.take(2).n]

    assert sizes == [2, 2, 1, 0]


@pytest.mark.parametrize(
    ("units", "message"),
    [(["degC"], "1 given for 2 channels"), ({"pressure": "hPa"}, "pressure not among")],
)
def test_units_that_do_not_fit_the_channels_are_refused(units: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        units_for(CHANNELS, units)  # type: ignore[arg-type]
