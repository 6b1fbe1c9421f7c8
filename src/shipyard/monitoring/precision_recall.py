"""Per-class precision, recall, F1 and support, and the precision-recall curve with average precision.

Both follow scikit-learn's definitions so a figure here reads the same as in a notebook: per-class rates are
``precision_recall_fscore_support(average=None, zero_division=np.nan)`` (an undefined rate is None, never a
silent 0), the curve is ``precision_recall_curve`` (one point per distinct score, then precision 1 at recall
0) and average precision is ``average_precision_score``, the step-wise area under that curve. The report
keeps a thinned curve (at most ``MAX_CURVE_POINTS`` of its points) so a million predictions do not make a
million-point chart; average precision is always taken from the full curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.core.jsonsafe import finite_or_none, json_value

MAX_CURVE_POINTS = 100


@dataclass(frozen=True, slots=True)
class ClassScores:
    """One class's precision, recall and F1, its support (rows labelled it) and how often it was predicted.

    Precision is None for a class never predicted, recall for a class never labelled, F1 only for a class
    neither predicted nor labelled (otherwise it is 2·TP / (predicted + support), which is then 0)."""

    label: Any
    precision: float | None
    recall: float | None
    f1: float | None
    support: int
    predicted: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": json_value(self.label),
            "precision": finite_or_none(self.precision),
            "recall": finite_or_none(self.recall),
            "f1": finite_or_none(self.f1),
            "support": self.support,
            "predicted": self.predicted,
        }


def per_class_scores(matrix: np.ndarray, classes: Sequence[Any]) -> tuple[ClassScores, ...]:
    """Each class's rates from a confusion matrix (rows true classes, columns predicted), in ``classes`` order."""
    tp = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    scores = []
    for i, label in enumerate(classes):
        both = int(predicted[i] + support[i])
        scores.append(
            ClassScores(
                label=label,
                precision=float(tp[i] / predicted[i]) if predicted[i] else None,
                recall=float(tp[i] / support[i]) if support[i] else None,
                f1=float(2 * tp[i] / both) if both else None,
                support=int(support[i]),
                predicted=int(predicted[i]),
            )
        )
    return tuple(scores)


def undefined_note(scores: Sequence[ClassScores]) -> str | None:
    """Which classes have a per-class rate left undefined, and why; None when every rate is defined."""
    never_predicted = [json_value(s.label) for s in scores if s.predicted == 0]
    never_labelled = [json_value(s.label) for s in scores if s.support == 0]
    parts = []
    if never_predicted:
        parts.append(f"precision is undefined for classes never predicted: {never_predicted}")
    if never_labelled:
        parts.append(f"recall is undefined for classes no label names: {never_labelled}")
    if not parts:
        return None
    return "; ".join(parts) + " (null, where scikit-learn's zero_division default would write 0)"


@dataclass(frozen=True, slots=True)
class PrecisionRecallCurve:
    """Points of scikit-learn's precision-recall curve for ``positive``, by rising score threshold (recall
    falls): ``thresholds`` has one entry fewer, as there, since the last point (precision 1, recall 0) has
    none. ``points`` is how many points the full curve had; the report keeps at most ``MAX_CURVE_POINTS``,
    always the first and the last, the rest evenly spaced along the curve."""

    positive: Any
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    thresholds: tuple[float, ...]
    points: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "positive": json_value(self.positive),
            "points": self.points,
            "precision": list(self.precision),
            "recall": list(self.recall),
            "thresholds": list(self.thresholds),
        }


def precision_recall(
    is_positive: np.ndarray, scores: np.ndarray, *, positive: Any, max_points: int = MAX_CURVE_POINTS
) -> tuple[PrecisionRecallCurve, float] | None:
    """The curve (thinned to ``max_points``) and average precision; None unless rows of both sides exist
    (with no positive, recall is undefined; with no negative, precision is 1 at every threshold)."""
    n_pos = int(is_positive.sum())
    if n_pos == 0 or n_pos == is_positive.size:
        return None
    order = np.argsort(scores, kind="mergesort")[::-1]  # scikit-learn's order, so ties fall the same way
    ordered = scores[order]
    last_of_score = np.r_[np.flatnonzero(np.diff(ordered)), ordered.size - 1]
    tps = np.cumsum(is_positive[order], dtype=np.float64)[last_of_score]
    predicted_positive = last_of_score + 1.0
    precision = np.r_[(tps / predicted_positive)[::-1], 1.0]
    recall = np.r_[(tps / tps[-1])[::-1], 0.0]
    thresholds = ordered[last_of_score][::-1]
    average = float(-np.sum(np.diff(recall) * precision[:-1]))
    full = precision.size
    keep = np.arange(full)
    if full > max_points:
        keep = np.unique(np.round(np.linspace(0, full - 1, max(max_points, 2))).astype(np.int64))
    curve = PrecisionRecallCurve(
        positive=positive,
        precision=tuple(precision[keep].tolist()),
        recall=tuple(recall[keep].tolist()),
        thresholds=tuple(thresholds[keep[:-1]].tolist()),
        points=full,
    )
    return curve, average
