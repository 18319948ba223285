"""How a model did on held-out rows: the numbers, and a confusion matrix to look at."""

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

__all__ = ["ClassScores", "Evaluation", "confusion_png", "evaluate"]


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """Scores of predictions against the truth. `confusion[i][j]` counts rows of `labels[i]`
    predicted as `labels[j]`; `roc_auc` is set for anomaly detectors when both kinds of row
    were held out."""

    labels: list[str]
    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]
    roc_auc: float | None = None

    def metrics(self) -> dict[str, float]:
        """Flat numbers for a bundle's manifest: `accuracy`, `macro_f1`, `roc_auc` when set,
        and `precision.<label>`, `recall.<label>`, `f1.<label>` per class."""
        flat = {"accuracy": self.accuracy, "macro_f1": self.macro_f1}
        if self.roc_auc is not None:
            flat["roc_auc"] = self.roc_auc
        for label, scores in self.per_class.items():
            flat |= {
                f"precision.{label}": scores.precision,
                f"recall.{label}": scores.recall,
                f"f1.{label}": scores.f1,
            }
        return flat


def evaluate(
    truth: np.ndarray,
    predicted: np.ndarray,
    labels: Sequence[str],
    *,
    anomaly_scores: np.ndarray | None = None,
) -> Evaluation:
    """Scores of `predicted` class indices against `truth`, both into `labels`; with
    `anomaly_scores` (higher: more likely not class 0) also the ROC AUC of class 0 against
    the rest."""
    if len(truth) != len(predicted) or not len(truth):
        raise ValueError(
            f"predicted: {len(predicted)} rows for {len(truth)} true ones; give one prediction "
            "per held-out row, at least one"
        )
    indices = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=indices, zero_division=0
    )
    roc_auc = None
    strange = np.asarray(truth) != 0
    if anomaly_scores is not None and 0 < strange.sum() < len(strange):
        roc_auc = float(roc_auc_score(strange, anomaly_scores))
    return Evaluation(
        labels=list(labels),
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(
            f1_score(truth, predicted, labels=indices, average="macro", zero_division=0)
        ),
        per_class={
            label: ClassScores(float(p), float(r), float(f), int(s))
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        confusion=confusion_matrix(truth, predicted, labels=indices).tolist(),
        roc_auc=roc_auc,
    )


def confusion_png(evaluation: Evaluation, title: str = "") -> bytes:
    """The confusion matrix as a PNG: true labels down, predicted across, counts in cells."""
    matrix = np.asarray(evaluation.confusion)
    side = 1.6 + 0.55 * len(evaluation.labels)
    # A bare Figure renders through Agg without pyplot: no display, no global state.
    figure = Figure(figsize=(side + 1.2, side), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = range(len(evaluation.labels))
    axes.set_xticks(ticks, evaluation.labels, rotation=45, ha="right")
    axes.set_yticks(ticks, evaluation.labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(
        title or f"accuracy {evaluation.accuracy:.3f}, macro-F1 {evaluation.macro_f1:.3f}"
    )
    dark = matrix.max(initial=0) / 2
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(
            j, i, str(count), ha="center", va="center", color="white" if count > dark else "black"
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
