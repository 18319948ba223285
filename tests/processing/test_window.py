import numpy as np
import pytest

from edgestack.processing import Windower

SHAPES = [(64, 16), (64, 64), (64, 100), (8, 1), (10, 37)]


def _direct(recording: np.ndarray, size: int, hop: int) -> np.ndarray:
    starts = range(0, recording.shape[1] - size + 1, hop)
    return np.stack([recording[:, s : s + size] for s in starts])


def _chunked(recording: np.ndarray, windower: Windower, sizes: list[int]) -> np.ndarray:
    cuts = np.cumsum(sizes)[:-1]
    return np.concatenate([windower.push(piece) for piece in np.split(recording, cuts, axis=1)])


@pytest.mark.parametrize(("size", "hop"), SHAPES)
def test_whole_recording_gives_windows_every_hop(size: int, hop: int) -> None:
    recording = np.random.default_rng(0).standard_normal((3, 2000)).astype(np.float32)

    windows = Windower(size, hop).push(recording)

    assert windows.shape == ((2000 - size) // hop + 1, 3, size)
    assert windows.dtype == np.float32
    assert np.array_equal(windows, _direct(recording, size, hop))


@pytest.mark.parametrize(("size", "hop"), SHAPES)
def test_any_chunking_gives_the_windows_of_the_whole(size: int, hop: int) -> None:
    rng = np.random.default_rng(size * 1000 + hop)
    recording = rng.standard_normal((2, 3000))
    expected = _direct(recording, size, hop)

    for _ in range(30):
        sizes = []
        while sum(sizes) < recording.shape[1]:
            # Empty chunks, single samples, chunks shorter and longer than a window.
            sizes.append(int(rng.choice([0, 1, 2, size - 1, size, size + 1, 3 * size + 5, 250])))
        got = _chunked(recording, Windower(size, hop), sizes)

        assert np.array_equal(got, expected)


def test_one_sample_at_a_time_gives_the_windows_of_the_whole() -> None:
    recording = np.arange(200.0).reshape(1, 200)

    got = _chunked(recording, Windower(16, 24), [1] * 200)

    assert np.array_equal(got, _direct(recording, 16, 24))
    assert got[:, 0, 0].tolist() == [float(s) for s in range(0, 185, 24)]


def test_too_few_samples_give_no_windows_yet() -> None:
    windower = Windower(10, 5)

    first = windower.push(np.ones((2, 9)))
    second = windower.push(np.ones((2, 1)))

    assert first.shape == (0, 2, 10)
    assert second.shape == (1, 2, 10)


def test_reset_forgets_the_partial_window() -> None:
    windower = Windower(4, 4)
    windower.push(np.zeros((1, 3)))

    windower.reset()
    windows = windower.push(np.arange(4.0).reshape(1, 4))

    assert windows.tolist() == [[[0.0, 1.0, 2.0, 3.0]]]


def test_windows_do_not_change_when_later_data_arrives() -> None:
    windower = Windower(4, 2)
    data = np.arange(6.0).reshape(1, 6)

    windows = windower.push(data)
    data[:] = -1
    windower.push(np.zeros((1, 4)))

    assert windows[:, 0, 0].tolist() == [0.0, 2.0]


def test_a_window_completed_across_chunks_keeps_its_samples_whatever_comes_next() -> None:
    windower = Windower(4, 4)
    first, second = np.arange(3.0).reshape(1, 3), np.arange(3.0, 6.0).reshape(1, 3)

    windower.push(first)
    windows = windower.push(second)
    first[:] = second[:] = -1
    later = windower.push(np.full((1, 6), 9.0))

    assert windows.tolist() == [[[0.0, 1.0, 2.0, 3.0]]]
    assert later.tolist() == [[[4.0, 5.0, 9.0, 9.0]], [[9.0, 9.0, 9.0, 9.0]]]


def test_a_change_of_channel_count_is_refused() -> None:
    windower = Windower(8, 4)
    windower.push(np.zeros((3, 5)))

    with pytest.raises(ValueError, match="reset"):
        windower.push(np.zeros((2, 5)))


def test_size_and_hop_must_be_positive() -> None:
    with pytest.raises(ValueError, match="hop"):
        Windower(8, 0)


def test_frames_are_windowed_with_the_frame_kept_last() -> None:
    frames = np.arange(2 * 7 * 3 * 2, dtype=np.float32).reshape(2, 7, 3, 2)  # (channels, n, h, w)

    got = _chunked(frames, Windower(3, 2), [2, 0, 5])

    assert got.shape == (3, 2, 3, 3, 2)
    assert np.array_equal(got[1], frames[:, 2:5])
