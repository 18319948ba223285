import numpy as np
import pytest

from edgestack.processing import EXTRACTORS

RATE = 4000.0


def _sine(freq: float, size: int = 1024, amplitude: float = 1.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(size) / RATE)


def _columns(kind: str, windows: np.ndarray, **params: object) -> dict[str, np.ndarray]:
    extractor = EXTRACTORS.build(kind, params)
    rows = extractor(windows, RATE)
    names = extractor.names([f"s{c}" for c in range(windows.shape[1])])
    return {name: rows[:, i] for i, name in enumerate(names)}


@pytest.mark.parametrize("value", [0.0, 1.0, -0.3, 1e6])
@pytest.mark.parametrize("kind", ["time_stats", "band_energies", "spectral_centroid"])
def test_constant_windows_give_zero_shape_and_spectrum(kind: str, value: float) -> None:
    windows = np.full((3, 1, 512), value, dtype=np.float32)

    columns = _columns(kind, windows)

    assert all(column.tolist() == [0.0] * 3 for column in columns.values())


def test_the_mean_of_a_constant_is_the_constant() -> None:
    windows = np.full((2, 1, 64), 21.5, dtype=np.float32)

    assert _columns("mean", windows)["s0.mean"].tolist() == [21.5, 21.5]


@pytest.mark.parametrize("freq", [37.0, 123.4, 997.0, 1512.3])
def test_dominant_frequency_and_centroid_of_a_sine_are_within_a_bin_or_two(freq: float) -> None:
    windows = _sine(freq)[None, None, :]

    dominant = _columns("dominant_frequency", windows)["s0.dominant_hz"][0]
    centroid = _columns("spectral_centroid", windows)["s0.centroid_hz"][0]

    bin_hz = RATE / 1024
    assert abs(dominant - freq) <= bin_hz
    assert abs(centroid - freq) <= 2 * bin_hz


def test_time_stats_match_their_definitions() -> None:
    noise = np.random.default_rng(1).standard_normal(200_000)
    windows = np.stack([_sine(50.0, 200_000, 2.0) + 3.0, noise])[:, None, :]

    c = _columns(
        "time_stats",
        windows,
        stats=["rms", "peak", "crest", "kurtosis", "skewness", "mean", "min", "max"],
    )

    assert c["s0.rms"] == pytest.approx([np.sqrt(2.0), 1.0], rel=0.01)
    assert c["s0.peak"][0] == pytest.approx(2.0, rel=1e-3)
    assert c["s0.crest"][0] == pytest.approx(np.sqrt(2.0), rel=1e-3)
    assert c["s0.kurtosis"] == pytest.approx([1.5, 3.0], rel=0.03)
    assert c["s0.skewness"] == pytest.approx([0.0, 0.0], abs=0.03)
    assert c["s0.mean"][0] == pytest.approx(3.0, abs=1e-3)
    assert (c["s0.min"][0], c["s0.max"][0]) == pytest.approx((1.0, 5.0), abs=1e-3)


def test_stats_come_per_channel_in_the_order_asked() -> None:
    extractor = EXTRACTORS.build("time_stats", {"stats": ["max", "mean"]})

    assert extractor.names(["a", "b"]) == ["a.max", "a.mean", "b.max", "b.mean"]


def test_octave_band_energies_are_shares_that_place_a_tone() -> None:
    windows = np.stack([_sine(40.0), _sine(1500.0)])[:, None, :]

    c = _columns("band_energies", windows)
    bands = np.column_stack([c[f"s0.band{b}"] for b in range(8)])

    assert bands.sum(axis=1) == pytest.approx([1.0, 1.0], rel=1e-5)
    assert np.argmax(bands[0]) == 2  # 31-62 Hz
    assert np.argmax(bands[1]) == 7  # 1-2 kHz


def test_linear_bands_are_equally_wide() -> None:
    windows = np.stack([_sine(300.0), _sine(1100.0)])[:, None, :]

    c = _columns("band_energies", windows, bands=4, scale="linear")
    bands = np.column_stack([c[f"s0.band{b}"] for b in range(4)])

    assert np.argmax(bands, axis=1).tolist() == [0, 2]  # 500 Hz wide bands


def test_frames_are_refused_naming_the_image_extractor() -> None:
    with pytest.raises(ValueError, match="image"):
        EXTRACTORS.build("time_stats")(np.zeros((2, 1, 8, 4, 4)), RATE)


def test_an_unknown_stat_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"extractors\[0\]\.params\.stats"):
        EXTRACTORS.build("time_stats", {"stats": ["median"]}, where="extractors[0]")


def test_raw_gives_every_sample_channel_by_channel_and_refuses_another_window_size() -> None:
    windows = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    raw = EXTRACTORS.build("raw", {"size": 4})

    rows = raw(windows, RATE)

    assert raw.names(["a", "b", "c"])[:5] == ["a.s0", "a.s1", "a.s2", "a.s3", "b.s0"]
    assert np.array_equal(rows, windows.reshape(2, 12))
    with pytest.raises(ValueError, match="set size to the spec's window"):
        EXTRACTORS.build("raw", {"size": 5})(windows, RATE)
