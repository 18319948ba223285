import numpy as np
import pytest
import torch

from edgestack.learning import TRAINERS, NetTrainer, fit
from edgestack.learning.zoo import _torch

from .shapes import CHANNELS, SIZE, placed_shapes

SHAPE = (CHANNELS, SIZE)


@pytest.fixture(scope="module")
def shapes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = placed_shapes(80, seed=4)
    x_test, y_test = placed_shapes(200, seed=5)
    return x, y, x_test, y_test


def test_the_defaults_learn_a_shape_anywhere_in_the_window_from_few_rows(
    shapes: tuple[np.ndarray, ...],
) -> None:
    x, y, x_test, y_test = shapes
    trainer = TRAINERS.build("cnn1d", {"shape": SHAPE})

    trainer.fit(x, y, seed=0)

    assert np.mean(trainer.predict_proba(x_test).argmax(axis=1) == y_test) >= 0.85


def test_training_stops_early_and_keeps_the_epoch_best_on_the_validation_rows(
    shapes: tuple[np.ndarray, ...],
) -> None:
    x, y, _, _ = shapes
    trainer = TRAINERS.build("cnn1d", {"shape": SHAPE, "epochs": 200, "patience": 3})
    assert isinstance(trainer, NetTrainer)
    held = slice(60, None)
    seen: list[tuple[int, float]] = []

    def judged() -> tuple[int, float]:
        assert trainer.module is not None
        scores = torch.from_numpy(_torch.forward(trainer.module, x[held]))
        goal = torch.from_numpy(y[held])
        return int((scores.argmax(dim=1) != goal).sum()), float(trainer.loss(scores, goal))

    trainer.module = trainer.build(x, 2)
    made = _torch.train(
        trainer.module,
        x[:60],
        y[:60],
        trainer.loss,
        epochs=200,
        batch_size=16,
        learning_rate=3e-3,
        seed=0,
        on_epoch=lambda _done, _total: seen.append(judged()),
        held_out=(x[held], y[held]),
        patience=3,
    )

    best = min(range(len(seen)), key=seen.__getitem__)  # fewest wrong, then the lowest loss
    assert made == len(seen) < 200
    assert best == made - 4  # three epochs without a better one, then it stopped
    errors, loss = judged()
    assert errors == seen[best][0] and loss == pytest.approx(seen[best][1], rel=1e-5)


def test_augmented_batches_keep_their_shape_and_move_the_samples(
    shapes: tuple[np.ndarray, ...],
) -> None:
    x, y, _, _ = shapes
    trainer = TRAINERS.build("cnn1d", {"shape": SHAPE, "epochs": 1})
    trainer.fit(x, y, seed=0)
    batch = torch.from_numpy(x[:16])

    moved = trainer._augmented(batch, torch.Generator().manual_seed(0))

    assert moved.shape == batch.shape
    assert not torch.allclose(moved, batch)
    # Scaled about each channel's mean, with noise that averages out: the means stay put.
    means = batch.reshape(16, CHANNELS, SIZE).mean(dim=2).numpy()
    assert moved.reshape(16, CHANNELS, SIZE).mean(dim=2).numpy() == pytest.approx(means, abs=0.1)


def test_progress_reaches_its_total_when_training_stops_early(
    shapes: tuple[np.ndarray, ...],
) -> None:
    x, y, _, _ = shapes
    steps: list[tuple[int, int]] = []

    fit(
        "cnn1d",
        x,
        [str(c) for c in y],
        params={"shape": SHAPE, "epochs": 300, "patience": 2},
        progress=lambda _, done, total: steps.append((done, total)),
    )

    assert len(steps) < 300  # it stopped early
    assert steps[-1] == (300, 300)
    assert [done for done, _ in steps] == sorted({done for done, _ in steps})
