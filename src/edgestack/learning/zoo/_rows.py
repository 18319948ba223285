"""The checks every trainer makes of what it is given."""

from typing import Literal, NoReturn

import numpy as np

__all__ = ["as_rows", "check_fold", "checked", "not_fitted"]


def as_rows(x: np.ndarray) -> np.ndarray:
    """`x` as finite float32 rows `(n, F)`; a `ValueError` naming the first bad row otherwise."""
    rows = np.asarray(x, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] == 0:
        raise ValueError(f"features: shape {rows.shape}, expected (rows, features)")
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"features: {len(bad)} rows hold NaN or infinity (first: row {bad[0]}); "
            "drop or repair them before training"
        )
    return rows


def checked(
    x: np.ndarray, y: np.ndarray, task: Literal["classify", "anomaly"]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows, class indices as int64 and the number of classes; classifiers need every class
    0..k-1 present, anomaly detectors normal rows (0) only."""
    rows = as_rows(x)
    labels = np.asarray(y)
    if labels.shape != (len(rows),):
        raise ValueError(f"y: shape {labels.shape} for {len(rows)} rows; give one class per row")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"y: {labels.dtype} values; give int class indices 0..classes-1")
    present = np.unique(labels)
    if task == "anomaly":
        if present.tolist() != [0]:
            raise ValueError(
                f"y: classes {present.tolist()}; an anomaly detector fits on normal rows only "
                "(all 0): leave the faulty ones out"
            )
        return rows, labels.astype(np.int64), 2
    n_classes = int(present[-1]) + 1 if len(present) else 0
    if n_classes < 2 or present.tolist() != list(range(n_classes)):
        raise ValueError(
            f"y: classes {present.tolist()}; a classifier needs indices 0..k-1, k >= 2, each "
            "present in the rows it fits on"
        )
    return rows, labels.astype(np.int64), n_classes


def not_fitted(trainer: object, action: str) -> NoReturn:
    raise RuntimeError(
        f"{type(trainer).__name__} is not fitted; call fit(x, y, seed=...) before {action}"
    )


def check_fold(shape: tuple[int, ...], x: np.ndarray) -> None:
    """A `ValueError` unless `shape` folds exactly the columns of rows `x`."""
    if int(np.prod(shape)) != x.shape[1]:
        raise ValueError(
            f"shape: {shape} folds {int(np.prod(shape))} columns but the rows have "
            f"{x.shape[1]}; give a shape whose product is the number of feature columns"
        )
