import numpy as np
import onnxruntime as ort
import pytest

from edgestack.learning import TRAINERS
from edgestack.learning.zoo import Cnn1dExits

from .shapes import CHANNELS, SIZE, placed_shapes


@pytest.fixture(scope="module")
def trained() -> tuple[Cnn1dExits, np.ndarray, np.ndarray]:
    x, y = placed_shapes(80, seed=4)
    x_test, y_test = placed_shapes(200, seed=5)
    trainer = TRAINERS.build("cnn1d_exits", {"shape": (CHANNELS, SIZE), "epochs": 60})
    assert isinstance(trainer, Cnn1dExits)
    trainer.fit(x, y, seed=0)
    return trainer, x_test, y_test


def run_split(head: bytes, tail: bytes, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    early, tensor = ort.InferenceSession(head).run(None, {"features": rows})
    (final,) = ort.InferenceSession(tail).run(None, {"intermediate": tensor})
    return early, tensor, final


@pytest.mark.parametrize("at", [2, 3])
def test_head_and_tail_give_the_whole_nets_answer(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray], at: int
) -> None:
    trainer, x_test, _ = trained

    split = trainer.split(at)
    early, tensor, final = run_split(split.head, split.tail, x_test)

    assert final == pytest.approx(trainer.predict_proba(x_test), abs=1e-4)
    assert early == pytest.approx(trainer.exit_proba(x_test), abs=1e-4)
    assert tensor.dtype == np.float32 and tensor.shape == (len(x_test), *split.shape)
    assert split.tensor_bytes == 4 * tensor[0].size


def test_an_int8_tensor_sends_a_quarter_of_the_bytes_and_keeps_the_answers(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray],
) -> None:
    trainer, x_test, _ = trained
    x_train, _ = placed_shapes(80, seed=4)

    exact = trainer.split(2)
    small = trainer.split(2, int8_from=x_train)
    _, tensor, final = run_split(small.head, small.tail, x_test)

    whole = trainer.predict_proba(x_test)
    assert tensor.dtype == np.int8
    assert small.tensor_bytes * 4 == exact.tensor_bytes == 4 * tensor[0].size
    assert small.scale is not None and small.scale > 0 and small.zero_point is not None
    assert np.mean(final.argmax(axis=1) == whole.argmax(axis=1)) >= 0.98
    assert final == pytest.approx(whole, abs=0.05)
    assert not np.allclose(final, whole, atol=1e-6)  # it was rounded on the way


def test_the_exit_answers_most_clear_windows_right_and_few_faint_ones(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray],
) -> None:
    trainer, x_test, y_test = trained
    noise = 0.3 * np.random.default_rng(1).standard_normal(x_test.shape).astype(np.float32)
    faint = noise + 0.25 * x_test  # the shape a quarter as strong, in the same noise

    clear_sure = trainer.exit_proba(x_test).max(axis=1) >= 0.9
    faint_sure = trainer.exit_proba(faint).max(axis=1) >= 0.9

    assert clear_sure.mean() >= 0.7
    assert faint_sure.mean() <= 0.3
    right = trainer.exit_proba(x_test).argmax(axis=1) == y_test
    assert right[clear_sure].mean() >= 0.95


@pytest.mark.parametrize("at", [0, 1, 4])
def test_a_split_without_the_exit_on_the_device_or_a_tail_is_refused(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray], at: int
) -> None:
    trainer, _, _ = trained

    with pytest.raises(ValueError, match=rf"at: {at}; .* give 2 to 3"):
        trainer.split(at)
