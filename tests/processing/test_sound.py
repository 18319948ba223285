import numpy as np
import pytest

from edgestack.processing import EXTRACTORS
from edgestack.processing.sound import mel_filterbank

RATE = 16000.0


def _tone_and_noise(size: int = 4096) -> np.ndarray:
    tone = np.sin(2 * np.pi * 1000.0 * np.arange(size) / RATE)
    noise = np.random.default_rng(0).standard_normal(size)
    return np.stack([tone, noise])[:, None, :].astype(np.float32)


def test_the_mel_filters_rise_to_one_and_cover_the_range_in_order() -> None:
    bank = mel_filterbank(20, 512, RATE, 0.0, RATE / 2)

    peaks = np.argmax(bank, axis=1)
    assert bank.shape == (20, 257)
    assert np.all(np.diff(peaks) > 0)
    assert bank.max(axis=1) == pytest.approx(1.0, abs=0.2)


def test_log_mel_of_a_tone_peaks_at_its_band_and_noise_is_flat() -> None:
    windows = _tone_and_noise()
    extractor = EXTRACTORS.build("log_mel", {"n_mels": 32})

    tone, noise = extractor(windows, RATE)

    centres = np.argmax(mel_filterbank(32, 512, RATE, 0.0, RATE / 2), axis=1) * RATE / 512
    assert abs(centres[np.argmax(tone)] - 1000.0) < 200.0
    assert np.ptp(tone) > 3 * np.ptp(noise[4:])  # lowest filters see too few bins to be smooth


def test_mfccs_of_a_tone_and_of_noise_differ() -> None:
    windows = _tone_and_noise()

    tone, noise = EXTRACTORS.build("mfcc", {"n_mfcc": 13})(windows, RATE)

    assert np.abs(tone[1:] - noise[1:]).max() > 5.0


def test_a_frame_longer_than_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="frame 512"):
        EXTRACTORS.build("log_mel")(np.zeros((1, 1, 256), np.float32), RATE)


def test_fmax_above_nyquist_is_refused() -> None:
    with pytest.raises(ValueError, match="Nyquist"):
        EXTRACTORS.build("log_mel", {"fmax": 9000.0})(np.zeros((1, 1, 1024), np.float32), RATE)
