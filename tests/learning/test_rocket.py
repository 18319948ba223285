import numpy as np
import onnx
import pytest

from edgestack.learning import TRAINERS, OnnxPredictor
from edgestack.learning.zoo import MiniRocketTrainer, rocket
from edgestack.learning.zoo._rocket import KERNELS, LENGTH
from edgestack.registry import RegistryError

from .shapes import CHANNELS, SIZE, placed_shapes

SHAPE = (CHANNELS, SIZE)


@pytest.fixture(scope="module")
def shapes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = placed_shapes(160, seed=1)
    x_test, y_test = placed_shapes(200, seed=2)
    return x, y, x_test, y_test


@pytest.fixture(scope="module")
def fitted(shapes: tuple[np.ndarray, ...]) -> MiniRocketTrainer:
    x, y, _, _ = shapes
    trainer = TRAINERS.build("minirocket", {"shape": SHAPE, "features": 2000})
    trainer.fit(x, y, seed=0)
    assert isinstance(trainer, MiniRocketTrainer)
    return trainer


def test_it_finds_a_shape_wherever_it_sits_where_a_tabular_model_cannot(
    fitted: MiniRocketTrainer, shapes: tuple[np.ndarray, ...]
) -> None:
    x, y, x_test, y_test = shapes
    tabular = TRAINERS.build("logistic_regression")
    tabular.fit(x, y, seed=0)

    rocket = np.mean(fitted.predict_proba(x_test).argmax(axis=1) == y_test)
    linear = np.mean(tabular.predict_proba(x_test).argmax(axis=1) == y_test)

    assert rocket >= 0.9
    assert linear <= 0.7


def test_the_whole_model_is_one_onnx_graph_that_predicts_as_the_native_one(
    fitted: MiniRocketTrainer, shapes: tuple[np.ndarray, ...]
) -> None:
    _, _, x_test, _ = shapes
    native = fitted.predict_proba(x_test)

    exported = fitted.to_onnx()
    indices, probabilities = OnnxPredictor(exported, ["sine", "square"]).predict(x_test)

    model = onnx.load_from_string(exported)

    ops = {node.op_type for node in model.graph.node}
    assert {"Conv", "Greater", "Softmax"} <= ops  # transform and head, inside the graph
    assert [i.name for i in model.graph.input] == ["features"]
    assert np.mean(indices == native.argmax(axis=1)) >= 0.995
    assert probabilities == pytest.approx(native, abs=1e-3)


def test_kernels_dilations_and_channel_subsets_are_minirockets(
    fitted: MiniRocketTrainer,
) -> None:
    blocks = list(fitted.transform.blocks)

    dilations = [int(b.conv.dilation[0]) for b in blocks]
    weights = [b.weights() for b in blocks]
    channels_used = np.concatenate([(np.abs(w).sum(axis=2) > 0).sum(axis=1) for w in weights])
    stored = np.concatenate([b.conv.weight.numpy().ravel() for b in blocks])

    assert len(KERNELS) == 84 and KERNELS.shape == (84, LENGTH)
    assert all(sorted(row.tolist()).count(2.0) == 3 for row in KERNELS)
    assert dilations[0] == 1 and dilations == sorted(set(dilations))
    assert (LENGTH - 1) * dilations[-1] <= SIZE - 1  # the widest kernel still fits a window
    assert dilations[-1] >= (SIZE - 1) // (LENGTH - 1) // 2  # spread up towards the window
    assert fitted.transform.width == 84 * (2000 // 84)
    assert channels_used.min() == 1 and channels_used.max() == CHANNELS  # subsets, summed
    assert set(np.unique(stored).tolist()) == {0.0, 1.0}  # what 8-bit integers hold exactly
    for w in weights:
        spanned = [kernel[np.abs(kernel).sum(axis=1) > 0] for kernel in w]
        assert all((rows == rows[0]).all() for rows in spanned)  # one kernel on each channel
        assert sorted(map(tuple, (rows[0] for rows in spanned))) == sorted(map(tuple, KERNELS))


def test_the_same_seed_gives_the_same_model_another_seed_another(
    fitted: MiniRocketTrainer, shapes: tuple[np.ndarray, ...]
) -> None:
    x, y, x_test, _ = shapes
    again = TRAINERS.build("minirocket", {"shape": SHAPE, "features": 2000})
    other = TRAINERS.build("minirocket", {"shape": SHAPE, "features": 2000})

    again.fit(x, y, seed=0)
    other.fit(x, y, seed=1)

    assert np.array_equal(again.predict_proba(x_test), fitted.predict_proba(x_test))
    assert not np.array_equal(other.predict_proba(x_test), fitted.predict_proba(x_test))


def test_a_window_shorter_than_a_kernel_or_a_wrong_fold_is_refused_naming_the_field() -> None:
    x = np.zeros((8, 100), dtype=np.float32)

    with pytest.raises(
        RegistryError, match=r"shape\[1\]: Input should be greater than or equal to 9"
    ):
        TRAINERS.build("minirocket", {"shape": (1, 8)})
    with pytest.raises(
        ValueError, match=r"shape: \(2, 64\) folds 128 columns but the rows have 100"
    ):
        TRAINERS.build("minirocket", {"shape": (2, 64)}).fit(x, np.array([0, 1] * 4), seed=0)


def test_many_rows_choose_the_penalty_on_a_sample_and_still_learn(
    shapes: tuple[np.ndarray, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y, x_test, y_test = shapes
    monkeypatch.setattr(rocket, "_ALPHA_ROWS", 40)
    trainer = TRAINERS.build("minirocket", {"shape": SHAPE, "features": 2000})

    trainer.fit(x, y, seed=0)

    assert np.mean(trainer.predict_proba(x_test).argmax(axis=1) == y_test) >= 0.9
