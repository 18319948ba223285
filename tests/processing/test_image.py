import numpy as np
import pytest

from edgestack.processing import EXTRACTORS


def test_image_averages_areas_and_scales_to_the_unit_range() -> None:
    frame = np.zeros((6, 9), np.float32)
    frame[:3, :3] = 9.0  # the top left block of a 2 x 3 grid of 3 x 3 blocks
    frame[3:, 6:] = 3.0
    windows = np.stack([np.zeros_like(frame), frame])[None, None]  # newest frame last

    row = EXTRACTORS.build("image", {"height": 2, "width": 3})(windows, 1.0)

    assert row.tolist() == [[1.0, 0.0, 0.0, 0.0, 0.0, pytest.approx(1 / 3)]]


def test_image_resizes_any_shape_and_standardises_each_frame() -> None:
    frames = np.random.default_rng(0).uniform(0, 255, (4, 1, 1, 37, 23)).astype(np.float32)
    extractor = EXTRACTORS.build("image", {"height": 5, "width": 4, "scale": "standard"})

    rows = extractor(frames, 1.0)

    assert rows.shape == (4, 20)
    assert extractor.names(["camera"])[:2] == ["camera.px0", "camera.px1"]
    assert rows.mean(axis=1) == pytest.approx([0.0] * 4, abs=1e-5)
    assert rows.std(axis=1) == pytest.approx([1.0] * 4, abs=1e-4)
