"""Fitting a registered trainer on labelled rows: a held-out split, optional cross-validation,
the ONNX export checked against the native model, and what the optimiser needs next.

    result = fit("gradient_boosting", rows, labels, seed=0, cv=5)
    result.metrics()["macro_f1"], result.onnx, result.lineage, result.test.x
"""

import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from edgestack.bundle import Lineage
from edgestack.learning._onnx import with_labels
from edgestack.learning.evaluate import Evaluation, evaluate
from edgestack.learning.trainer import TRAINERS, Trainer
from edgestack.learning.zoo import NetTrainer
from edgestack.learning.zoo._rows import as_rows, check_fold
from edgestack.predictor import OnnxPredictor

__all__ = [
    "ANOMALY_LABELS",
    "AUTO_CANDIDATES",
    "RAW_CANDIDATES",
    "SMALL_DATA_ROWS",
    "AutoResult",
    "Candidate",
    "FitResult",
    "Input",
    "Progress",
    "Rows",
    "auto",
    "fit",
]

AUTO_CANDIDATES = (
    "logistic_regression",
    "decision_tree",
    "random_forest",
    "gradient_boosting",
    "svm",
    "mlp",
)
"""The classifiers `auto` tries, roughly cheapest first: the ones that take feature rows as
they come, with no shape to give."""
RAW_CANDIDATES = ("minirocket", "cnn1d")
"""What `auto` also tries when it is given raw windows: nets and transforms that learn from
the samples themselves, shape given."""
SMALL_DATA_ROWS = 2000
"""Up to this many training rows, `auto` ranks candidates by stratified k-fold
cross-validation over all of them (5 folds, fewer when a label has fewer rows); above it, on
one stratified validation split of a quarter of them."""
ANOMALY_LABELS = ["normal", "anomaly"]
"""The labels of an anomaly detector's two probability columns when the normal label is
`normal`; the first is always the `normal_label` it was fitted with, so the device's alarm rule
with that `normal_label` reads its normal windows as normal."""

Progress = Callable[[str, int, int], None]
"""Called as work advances: what was just done, steps done, steps in all."""

_MIN_PER_LABEL = 8  # enough windows to put some of each label in both the train and test split
_VALIDATION_SHARE = 0.25  # of the training rows, for `auto` to compare candidates on
_FOLDS = 5
# Once every candidate is scored, the leaders are scored again on fresh shuffles of the
# folds while the budget lasts: a bounded number of rounds, so a tie is settled by more rows
# rather than by one lucky split.
_LEADERS = 3
_EXTRA_ROUNDS = 2

Input = Literal["features", "raw"]
"""Which rows a model takes: window features, or the raw windows' samples."""


@dataclass(frozen=True)
class Rows:
    """Feature rows and their class indices into the result's labels."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class FitResult:
    """A fitted model and how it did on rows it never saw.

    `trainer` is the fitted native model, `onnx` its export (recording `labels`, the order of
    its probability columns), `evaluation` measured through the ONNX model on `test`.
    `split` says where the held-out rows came from: `given` (the caller's, such as the hub's
    split column) or `stratified` (drawn here). An anomaly detector fits on the normal rows of
    `train` only and its labels are its `normal_label`, then `anomaly`. `input` says which rows
    the model takes (`train` and `test` hold those): feature rows, or raw windows.
    """

    trainer: Trainer
    onnx: bytes
    labels: list[str]
    evaluation: Evaluation
    lineage: Lineage
    train: Rows
    test: Rows
    split: Literal["given", "stratified"]
    onnx_agreement: float
    cv_macro_f1: list[float] = field(default_factory=list)
    input: Input = "features"

    def metrics(self) -> dict[str, float]:
        """The evaluation's numbers, `n_train`, `n_test`, `onnx_agreement` (the share of
        held-out rows where the export and the native model pick the same class) and, after
        cross-validation, `cv_macro_f1_mean` and `cv_macro_f1_std`."""
        metrics = self.evaluation.metrics() | {
            "n_train": float(len(self.train.y)),
            "n_test": float(len(self.test.y)),
            "onnx_agreement": self.onnx_agreement,
        }
        if self.cv_macro_f1:
            metrics["cv_macro_f1_mean"] = float(np.mean(self.cv_macro_f1))
            metrics["cv_macro_f1_std"] = float(np.std(self.cv_macro_f1))
        return metrics


@dataclass(frozen=True)
class Candidate:
    """One trainer `auto` tried on `input` rows: its mean macro-F1 over `scores` (one per
    validation fold or split, over every round it was scored in) and the seconds it took, or
    why it has none (`error`)."""

    trainer: str
    macro_f1: float | None
    seconds: float
    error: str | None = None
    input: Input = "features"
    scores: tuple[float, ...] = ()


@dataclass(frozen=True)
class AutoResult:
    """The best candidate refitted on all training rows and evaluated on the test rows, and
    every candidate, the one chosen first, then best first."""

    best: FitResult
    leaderboard: list[Candidate]


def fit(
    trainer: str,
    features: np.ndarray,
    labels: Sequence[str],
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    test_size: float = 0.25,
    test: np.ndarray | None = None,
    cv: int = 0,
    dataset: str | None = None,
    dataset_version: int | None = None,
    normal_label: str = "normal",
    progress: Progress | None = None,
) -> FitResult:
    """Fit the registered `trainer` with `params` on the training rows and evaluate it on
    the held-out ones.

    `test` marks held-out rows (the hub's split column); it is used when every label has rows
    on both sides, otherwise a stratified `test_size` is drawn. With `cv` >= 2, the training
    rows are first cross-validated in `cv` stratified folds. Anomaly detectors see rows of
    `normal_label` as normal and every other label as an anomaly.
    """
    task = TRAINERS.get(trainer).task
    x, y, classes = _validated(features, labels, test_size, task, normal_label)
    mask, how = _split(y, test, test_size, seed)
    return _fit(
        trainer,
        dict(params or {}),
        x,
        y,
        classes,
        mask,
        how,
        seed,
        cv,
        dataset,
        dataset_version,
        progress,
    )


def auto(
    features: np.ndarray,
    labels: Sequence[str],
    *,
    raw: np.ndarray | None = None,
    shape: tuple[int, int] | None = None,
    budget_s: float = 120.0,
    candidates: Sequence[str] = AUTO_CANDIDATES,
    raw_candidates: Sequence[str] = RAW_CANDIDATES,
    seed: int = 0,
    test_size: float = 0.25,
    test: np.ndarray | None = None,
    dataset: str | None = None,
    dataset_version: int | None = None,
    progress: Progress | None = None,
) -> AutoResult:
    """Try `candidates` on the feature rows, and `raw_candidates` on `raw` when given (the
    raw window of each feature row, in the same order, folded as `shape` `(channels, size)`;
    one channel when `shape` is left out), each with its default settings, while `budget_s`
    lasts; keep the best by macro-F1 on the training rows and refit it on all of them, so the
    test rows judge only the winner (`best.input` says which rows it takes).

    Candidates are scored by cross-validation over all training rows when there are at most
    `SMALL_DATA_ROWS` of them, else on a validation split; a raw-window candidate is kept over
    a feature one that leads it by no more than the folds' noise. Feature and raw candidates take
    turns, so a short budget still tries both kinds; the first candidate always runs, later
    ones start only while time is left. Time left after every candidate is scored goes to
    scoring the leaders again on fresh folds (a bounded number of rounds), which the
    leaderboard's `scores` show.
    """
    x, y, classes = _validated(features, labels, test_size, "classify", "normal")
    rows: dict[Input, np.ndarray] = {"features": x}
    plan: list[tuple[str, Input, dict[str, Any]]] = [(name, "features", {}) for name in candidates]
    if raw is not None:
        rows["raw"], fold = _raw(raw, shape, len(x))
        nets: list[tuple[str, Input, dict[str, Any]]] = [
            (name, "raw", {"shape": fold}) for name in raw_candidates
        ]
        plan = [c for pair in itertools.zip_longest(plan, nets) for c in pair if c is not None]
    mask, how = _split(y, test, test_size, seed)
    kept = y[~mask]
    total = len(plan) + _LEADERS * _EXTRA_ROUNDS + 1
    start = time.monotonic()
    splits = _validation(kept, seed)
    board: list[Candidate] = []
    for i, (name, given, params) in enumerate(plan):
        if i and time.monotonic() - start >= budget_s:
            reason = f"not tried: the {budget_s:g} s budget ran out"
            board.append(Candidate(name, None, 0.0, reason, given))
            continue
        tried = Candidate(name, None, 0.0, None, given)
        board.append(_scored(tried, params, rows, ~mask, kept, classes, splits, seed))
        if progress is not None:
            progress(f"tried {name}", i + 1, total)
    done = len(plan)
    for extra in range(1, _EXTRA_ROUNDS + 1):
        fresh = _validation(kept, seed + extra)
        leaders = sorted((c for c in board if c.scores), key=_standing)[:_LEADERS]
        for leader in leaders:
            # A round costs about what the last ones did; start it only if that fits.
            cost = leader.seconds / len(leader.scores) * len(fresh)
            if time.monotonic() - start + cost > budget_s:
                continue
            params = next(p for name, _, p in plan if name == leader.trainer)
            board[board.index(leader)] = _scored(
                leader, params, rows, ~mask, kept, classes, fresh, seed
            )
            done += 1
            if progress is not None:
                progress(f"scored {leader.trainer} again, round {extra + 1}", done, total)
    board.sort(key=_standing)
    if board[0].macro_f1 is None:
        reasons = "; ".join(f"{c.trainer}: {c.error}" for c in board)
        raise ValueError(f"candidates: none of them fitted ({reasons})")
    winner = _preferred(board, len(splits))
    board.remove(winner)
    board.insert(0, winner)
    params = next(p for name, _, p in plan if name == winner.trainer)
    best = _fit(
        winner.trainer,
        params,
        rows[winner.input],
        y,
        classes,
        mask,
        how,
        seed,
        0,
        dataset,
        dataset_version,
        None,
    )
    folds = list(winner.scores) if len(splits) > 1 else []
    best = dataclasses.replace(best, input=winner.input, cv_macro_f1=folds)
    if progress is not None:
        progress(f"refitted {winner.trainer}", total, total)
    return AutoResult(best=best, leaderboard=board)


def _preferred(board: list[Candidate], paired: int) -> Candidate:
    """The winner of `board` (sorted best first): the best, unless it takes feature rows and
    the best raw-window candidate trails it by no more than the noise, twice the standard
    error of their differences on the first `paired` splits, which both were scored on.

    Raw windows hold everything the features are computed from; on a few dozen cases, a lead
    within the noise of the folds is no reason to give them up (on ArrowHead, an SVM on
    features led MiniRocket by 7 points over the folds and trailed it by 8 on the test
    split)."""
    best = board[0]
    raw = next((c for c in board if c.input == "raw" and c.scores), None)
    if best.input == "raw" or raw is None or paired < 2:
        return best
    lead = np.subtract(best.scores[:paired], raw.scores[:paired])
    return raw if lead.mean() <= 2 * lead.std(ddof=1) / np.sqrt(paired) else best


def _standing(candidate: Candidate) -> float:
    """Sort key, best first; a candidate without a score comes last, ties keep their order."""
    return 1.0 if candidate.macro_f1 is None else -candidate.macro_f1


def _raw(
    raw: np.ndarray, shape: tuple[int, int] | None, n: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Raw window rows as float32 and the shape that folds them; errors name `raw` or `shape`."""
    given = np.asarray(raw, dtype=np.float32)
    if given.ndim != 2 or len(given) != n:
        raise ValueError(
            f"raw: shape {given.shape} for {n} feature rows; give one row of raw samples per "
            "feature row, in the same order"
        )
    if not np.isfinite(given).all():
        bad = int(np.flatnonzero(~np.isfinite(given).all(axis=1))[0])
        raise ValueError(f"raw: row {bad} holds NaN or infinity; repair or drop that window")
    fold = (1, given.shape[1]) if shape is None else (int(shape[0]), int(shape[1]))
    check_fold(fold, given)
    return given, fold


def _validation(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Index pairs (fit, validate) over training rows with classes `y`: stratified folds over
    all of them when they are few (`SMALL_DATA_ROWS`), else one stratified split."""
    fewest = int(np.bincount(y).min())
    if len(y) <= SMALL_DATA_ROWS and fewest >= 2:
        folds = StratifiedKFold(min(_FOLDS, fewest), shuffle=True, random_state=seed)
        return list(folds.split(np.zeros(len(y)), y))
    fit_rows, check_rows = train_test_split(
        np.arange(len(y)), test_size=_VALIDATION_SHARE, stratify=y, random_state=seed
    )
    return [(fit_rows, check_rows)]


def _scored(
    candidate: Candidate,
    params: dict[str, Any],
    rows: dict[Input, np.ndarray],
    training: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    splits: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
) -> Candidate:
    """`candidate` with the macro-F1 of each split added to its scores, or why it failed."""
    began = time.monotonic()
    x = rows[candidate.input][training]
    scores = list(candidate.scores)
    try:
        for fit_rows, check_rows in splits:
            model = TRAINERS.build(candidate.trainer, params)
            model.fit(x[fit_rows], y[fit_rows], seed=seed)
            predicted = model.predict_proba(x[check_rows]).argmax(axis=1)
            scores.append(evaluate(y[check_rows], predicted, classes).macro_f1)
    except (ValueError, RuntimeError) as exc:
        return dataclasses.replace(
            candidate, seconds=candidate.seconds + time.monotonic() - began, error=str(exc)
        )
    return dataclasses.replace(
        candidate,
        macro_f1=float(np.mean(scores)),
        seconds=candidate.seconds + time.monotonic() - began,
        scores=tuple(scores),
    )


def _fit(
    name: str,
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    test: np.ndarray,
    how: Literal["given", "stratified"],
    seed: int,
    cv: int,
    dataset: str | None,
    dataset_version: int | None,
    progress: Progress | None,
) -> FitResult:
    settings = TRAINERS.validate(name, params)
    train, held_out = Rows(x[~test], y[~test]), Rows(x[test], y[test])
    steps = _Steps(progress, cv + 1, settings.get("epochs", 1))
    scores = []
    if cv:
        if cv < 2:
            raise ValueError(f"cv: {cv} folds; give 2 or more, or 0 for none")
        counts = Counter(train.y.tolist())
        if min(counts.values()) < cv:
            label, n = classes[min(counts, key=counts.__getitem__)], min(counts.values())
            raise ValueError(
                f"cv: {cv} folds need {cv} training rows of each label; {label!r} has {n}; "
                "ask for fewer folds"
            )
        folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
        for k, (inner, outer) in enumerate(folds.split(train.x, train.y)):
            model = _fitted(
                name,
                settings,
                Rows(train.x[inner], train.y[inner]),
                seed,
                steps,
                f"fold {k + 1}/{cv}",
            )
            predicted = model.predict_proba(train.x[outer]).argmax(axis=1)
            scores.append(evaluate(train.y[outer], predicted, classes).macro_f1)
    model = _fitted(name, settings, train, seed, steps, "final fit")
    onnx = with_labels(model.to_onnx(), classes)
    predicted, probabilities = OnnxPredictor(onnx, classes).predict(held_out.x)
    native = model.predict_proba(held_out.x).argmax(axis=1)
    anomaly = probabilities[:, 1] if model.task == "anomaly" else None
    return FitResult(
        trainer=model,
        onnx=onnx,
        labels=classes,
        evaluation=evaluate(held_out.y, predicted, classes, anomaly_scores=anomaly),
        lineage=Lineage(
            dataset=dataset,
            dataset_version=dataset_version,
            trainer=name,
            params=TRAINERS.params(name).model_validate(settings).model_dump(mode="json"),
            seed=seed,
        ),
        train=train,
        test=held_out,
        split=how,
        onnx_agreement=float(np.mean(predicted == native)),
        cv_macro_f1=scores,
    )


class _Steps:
    """Progress in steps: one per fit, or one per epoch for a net."""

    def __init__(self, progress: Progress | None, fits: int, epochs: int) -> None:
        self._progress = progress
        self._epochs = epochs
        self._total = fits * epochs
        self._done = 0
        self._began = 0

    def attach(self, model: Trainer, stage: str) -> None:
        self._began = self._done
        if self._progress is not None and isinstance(model, NetTrainer):
            model.on_epoch = lambda epoch, epochs: self._advance(f"{stage}, epoch {epoch}/{epochs}")

    def fitted(self, model: Trainer, stage: str) -> None:
        if isinstance(model, NetTrainer):
            model.on_epoch = None
        # A model fitted in one go, or a net that stopped early, finishes its share here.
        if self._done < self._began + self._epochs:
            self._done = self._began + self._epochs - 1
            self._advance(stage)

    def _advance(self, what: str) -> None:
        self._done += 1
        if self._progress is not None:
            self._progress(what, self._done, self._total)


def _fitted(
    name: str, settings: dict[str, Any], rows: Rows, seed: int, steps: _Steps, stage: str
) -> Trainer:
    model = TRAINERS.build(name, settings)
    steps.attach(model, stage)
    # Anomaly detectors learn what normal looks like: class 0 only.
    normal = rows.y == 0 if model.task == "anomaly" else np.ones(len(rows.y), dtype=bool)
    model.fit(rows.x[normal], rows.y[normal], seed=seed)
    steps.fitted(model, stage)
    return model


def _split(
    y: np.ndarray, test: np.ndarray | None, test_size: float, seed: int
) -> tuple[np.ndarray, Literal["given", "stratified"]]:
    """The held-out mask: `test` when every class has rows on both sides, else stratified."""
    if test is not None:
        given = np.asarray(test, dtype=bool)
        if given.shape != y.shape:
            raise ValueError(f"test: {given.shape} marks for {len(y)} rows; give one per row")
        classes = set(y.tolist())
        if set(y[given].tolist()) == classes == set(y[~given].tolist()):
            return given, "given"
    counts = Counter(y.tolist())
    stratify = y if min(counts.values()) >= 2 else None
    _, held_out = train_test_split(
        np.arange(len(y)), test_size=test_size, stratify=stratify, random_state=seed
    )
    mask = np.zeros(len(y), dtype=bool)
    mask[held_out] = True
    return mask, "stratified"


def _validated(
    features: np.ndarray,
    labels: Sequence[str],
    test_size: float,
    task: Literal["classify", "anomaly"],
    normal_label: str,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows as float32, labels as indices into the class names, and those names: the sorted
    distinct labels for a classifier, normal first then anomaly for a detector."""
    x = as_rows(features)
    if len(labels) != len(x):
        raise ValueError(
            f"labels: {len(labels)} given for {len(x)} feature rows; give one label per row"
        )
    if not 0 < test_size < 1:
        raise ValueError(f"test_size: {test_size}, expected a share between 0 and 1")
    counts = Counter(labels)
    if task == "anomaly":
        if normal_label == ANOMALY_LABELS[1]:
            raise ValueError(
                f"normal_label: {normal_label!r} names what a detector finds abnormal; "
                "label the normal rows otherwise"
            )
        if counts[normal_label] < _MIN_PER_LABEL:
            raise ValueError(
                f"labels: {counts[normal_label]} rows of {normal_label!r}; an anomaly detector "
                f"fits on at least {_MIN_PER_LABEL} normal rows (the label is set by "
                "normal_label)"
            )
        anomalous = np.array([label != normal_label for label in labels], np.int64)
        return x, anomalous, [normal_label, ANOMALY_LABELS[1]]
    if len(counts) < 2:
        raise ValueError(
            f"labels: only {sorted(counts)} present; a classifier needs at least 2 distinct labels"
        )
    for label, count in sorted(counts.items()):
        if count < _MIN_PER_LABEL:
            raise ValueError(
                f"labels: {label!r} has {count} rows; at least {_MIN_PER_LABEL} per label are "
                "needed, collect more windows of it"
            )
    classes = sorted(counts)
    index = {label: i for i, label in enumerate(classes)}
    return x, np.array([index[label] for label in labels], dtype=np.int64), classes
