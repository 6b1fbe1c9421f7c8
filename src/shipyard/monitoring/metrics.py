"""Model performance against labels, calibration, the label-free accuracy estimate and reward rates.

Every function is pure over arrays and returns a frozen result whose ``to_dict()`` is JSON-safe: a figure
that is undefined for the data (ROC AUC with one class present, R² of constant labels) is ``None`` with a
note saying why, so a monitoring job can store whatever it gets and the dashboard can explain a gap.
Rows whose label (or prediction) is not one of the model's classes are counted and left out instead of
failing the window: a new class turning up in production is a finding, not a crash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.histograms import check_bins
from shipyard.core.jsonsafe import finite_or_none, json_value
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.calibration import (
    DEFAULT_CALIBRATION_BINS,
    CalibrationResult,
    default_positive,
    reliability,
    with_positive,
)
from shipyard.monitoring.labels import (
    Numbers,
    Values,
    as_1d,
    as_numbers,
    distinct,
    encode,
    probability_rows,
    resolve_classes,
)
from shipyard.monitoring.precision_recall import (
    ClassScores,
    PrecisionRecallCurve,
    per_class_scores,
    precision_recall,
    undefined_note,
)

MAX_UNKNOWN_SHOWN = 10


# --- classification -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClassificationPerformance:
    """How a classifier did on labelled rows. ``average`` says how precision, recall, F1 and ROC AUC were
    taken: ``binary`` (for ``positive``), ``one_vs_rest`` (a multiclass model scored for ``positive``) or
    ``macro`` (unweighted mean over classes). Confusion matrix rows are true classes, columns predicted.

    ``brier_score`` is the binary Brier score on the positive class's probability for two classes (scikit-learn's
    ``brier_score_loss``, in [0, 1]) and the multi-class Brier score, squared error summed over the classes
    (in [0, 2]), for more. ``per_class`` holds each class's precision, recall, F1 and support;
    ``average_precision`` and ``precision_recall_curve`` are for the scored class (``positive``)."""

    n: int
    classes: tuple[Any, ...]
    average: str
    positive: Any
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    log_loss: float | None
    calibration: CalibrationResult | None
    confusion_matrix: tuple[tuple[int, ...], ...]
    unknown_labels: int = 0
    unknown_predictions: int = 0
    unknown_label_values: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)
    brier_score: float | None = None
    average_precision: float | None = None
    per_class: tuple[ClassScores, ...] = ()
    precision_recall_curve: PrecisionRecallCurve | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "classes": [json_value(c) for c in self.classes],
            "average": self.average,
            "positive": json_value(self.positive),
            "accuracy": finite_or_none(self.accuracy),
            "precision": finite_or_none(self.precision),
            "recall": finite_or_none(self.recall),
            "f1": finite_or_none(self.f1),
            "roc_auc": finite_or_none(self.roc_auc),
            "average_precision": finite_or_none(self.average_precision),
            "log_loss": finite_or_none(self.log_loss),
            "brier_score": finite_or_none(self.brier_score),
            "calibration": self.calibration.to_dict() if self.calibration is not None else None,
            "confusion_matrix": {
                "labels": [json_value(c) for c in self.classes],
                "matrix": [list(row) for row in self.confusion_matrix],
            },
            "per_class": [c.to_dict() for c in self.per_class],
            "precision_recall_curve": (
                self.precision_recall_curve.to_dict() if self.precision_recall_curve is not None else None
            ),
            "unknown_labels": self.unknown_labels,
            "unknown_predictions": self.unknown_predictions,
            "unknown_label_values": list(self.unknown_label_values),
            "notes": dict(self.notes),
        }


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (what the Mann-Whitney form of AUC needs)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    sizes = np.diff(np.r_[starts, values.size])
    ranks = np.empty(values.size)
    ranks[order] = (starts + (sizes + 1) / 2)[group]
    return ranks


def _binary_auc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    n_pos = int(is_positive.sum())
    n_neg = is_positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(scores)
    return float((ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(
    codes: np.ndarray, proba: np.ndarray, positive_index: int | None, classes: Sequence[Any], notes: dict[str, str]
) -> float | None:
    if positive_index is not None:
        auc = _binary_auc(codes == positive_index, proba[:, positive_index])
        if auc is None:
            present = [json_value(classes[c]) for c in np.unique(codes).tolist()]
            notes["roc_auc"] = f"ROC AUC needs rows of the positive class and of others; labels hold only {present}"
        return auc
    per_class = [_binary_auc(codes == c, proba[:, c]) for c in range(len(classes))]
    defined = [a for a in per_class if a is not None]
    if not defined:
        notes["roc_auc"] = "ROC AUC needs at least one class with both rows of it and rows of others"
        return None
    if len(defined) < len(per_class):
        skipped = [json_value(classes[c]) for c, a in enumerate(per_class) if a is None]
        notes["roc_auc"] = (
            f"one-vs-rest macro average over {len(defined)} of {len(classes)} classes; {skipped} had no rows "
            "(or only rows) among the labels"
        )
    return float(np.mean(defined))


def _brier_score(codes: np.ndarray, proba: np.ndarray, positive_index: int | None) -> float:
    """Two classes: mean squared error of the positive class's probability (scikit-learn's binary Brier).
    More: the multi-class Brier score, squared error summed over classes, averaged over rows."""
    k = proba.shape[1]
    if k == 2:
        index = 1 if positive_index is None else positive_index
        return float(np.mean(np.square(proba[:, index] - (codes == index))))
    truth = np.zeros_like(proba)
    truth[np.arange(codes.size), codes] = 1.0
    return float(np.mean(np.square(proba - truth).sum(axis=1)))


def _precision_recall(
    codes: np.ndarray, proba: np.ndarray, positive_index: int | None, classes: Sequence[Any], notes: dict[str, str]
) -> tuple[PrecisionRecallCurve | None, float | None]:
    if positive_index is None:
        notes["average_precision"] = (
            "average precision and the precision-recall curve are for one scored class; pass positive= to pick "
            "one of a multiclass model's classes"
        )
        return None, None
    result = precision_recall(codes == positive_index, proba[:, positive_index], positive=classes[positive_index])
    if result is None:
        present = [json_value(classes[c]) for c in np.unique(codes).tolist()]
        notes["average_precision"] = (
            f"average precision needs rows of the positive class and of others; labels hold only {present}"
        )
        return None, None
    return result


def _log_loss(codes: np.ndarray, proba: np.ndarray) -> float:
    # Clipped as scikit-learn does, so one confident miss costs ~36 nats rather than infinity.
    eps = np.finfo(np.float64).eps
    picked = np.clip(proba[np.arange(codes.size), codes], eps, 1 - eps)
    return float(-np.log(picked).mean())


def _rates(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1, with 0 where undefined (scikit-learn's ``zero_division`` default)."""
    tp = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), 0.0)
    return precision, recall, f1, predicted, actual


def _average_name(k: int, positive_index: int | None) -> str:
    if positive_index is None:
        return "macro"
    return "binary" if k == 2 else "one_vs_rest"


def classification_performance(
    labels: Values,
    predictions: Values,
    probabilities: ArrayLike | None = None,
    *,
    classes: Values | None = None,
    positive: Any = None,
    calibration_bins: int = DEFAULT_CALIBRATION_BINS,
) -> ClassificationPerformance:
    """Accuracy, precision, recall, F1, ROC AUC, log loss, Brier score, calibration, the confusion matrix,
    per-class precision/recall/F1/support, and average precision with its precision-recall curve.

    ``probabilities`` is (n, k) in ``classes`` order (the model's); without it the probability-based figures
    are None. Binary models are scored for ``positive`` (default: the second class, as scikit-learn does),
    multiclass models macro-averaged unless ``positive`` picks one class to score one-vs-rest.
    """
    check_bins(calibration_bins, "calibration_bins")
    y, y_pred = as_1d(labels, "labels"), as_1d(predictions, "predictions")
    if y.size != y_pred.size:
        raise InvalidArgumentError(f"labels and predictions must be the same length; got {y.size} and {y_pred.size}")
    resolved = resolve_classes(classes, y, y_pred)
    k = len(resolved)
    proba: np.ndarray | None = None
    if probabilities is not None:
        proba = probability_rows(probabilities)
        if proba.shape[0] != y.size:
            raise InvalidArgumentError(f"labels has {y.size} rows but probabilities has {proba.shape[0]}")
        if y.size and proba.shape[1] != k:
            hint = "" if classes is not None else "; pass classes= in the model's order"
            raise InvalidArgumentError(
                f"probabilities has {proba.shape[1]} columns but there are {k} classes {list(resolved)}{hint}"
            )
    positive_index = default_positive(resolved, positive)
    codes, predicted_codes = encode(y, resolved), encode(y_pred, resolved)
    scored = (codes >= 0) & (predicted_codes >= 0)
    unknown = y[codes < 0]
    unknown_values = tuple(str(v) for v in distinct(unknown)[:MAX_UNKNOWN_SHOWN]) if unknown.size else ()
    t, p = codes[scored], predicted_codes[scored]
    n = int(t.size)
    matrix = np.bincount(t * k + p, minlength=k * k).reshape(k, k) if k else np.zeros((0, 0), dtype=np.int64)
    notes: dict[str, str] = {}
    common: dict[str, Any] = {
        "n": n,
        "classes": resolved,
        "average": _average_name(k, positive_index),
        "positive": resolved[positive_index] if positive_index is not None else None,
        "confusion_matrix": tuple(tuple(int(c) for c in row) for row in matrix),
        "unknown_labels": int((codes < 0).sum()),
        "unknown_predictions": int((predicted_codes < 0).sum()),
        "unknown_label_values": unknown_values,
        "notes": notes,
    }
    if n == 0:
        notes["all"] = "no rows with both a label and a prediction among the model's classes"
        empty: dict[str, Any] = dict.fromkeys(
            ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "calibration")
        )
        return ClassificationPerformance(**common, **empty)

    precision, recall, f1, predicted, actual = _rates(matrix)
    per_class = per_class_scores(matrix, resolved)
    undefined = undefined_note(per_class)
    if undefined is not None:
        notes["per_class"] = undefined
    if positive_index is not None:
        scores = (precision[positive_index], recall[positive_index], f1[positive_index])
        name = json_value(resolved[positive_index])
        if predicted[positive_index] == 0:
            notes["precision"] = f"no row was predicted {name!r}; counted as 0, as scikit-learn does"
        if actual[positive_index] == 0:
            notes["recall"] = f"no row is labelled {name!r}; counted as 0, as scikit-learn does"
    else:
        scores = (precision.mean(), recall.mean(), f1.mean())
        if (predicted == 0).any() or (actual == 0).any():
            notes["precision"] = (
                "classes never predicted (or never seen) count as 0 in the macro average, as in scikit-learn"
            )

    roc_auc = log_loss = calibration = brier = average_precision = curve = None
    if proba is None:
        notes["probabilities"] = (
            "no probabilities given: ROC AUC, average precision, log loss, Brier score and calibration need them"
        )
    else:
        rows = proba[scored]
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            notes["probabilities"] = (
                f"{int((~finite).sum())} scored rows have no probabilities and are left out of ROC AUC, average "
                "precision, log loss, Brier score and calibration"
            )
        if finite.any():
            roc_auc = _roc_auc(t[finite], rows[finite], positive_index, resolved, notes)
            curve, average_precision = _precision_recall(t[finite], rows[finite], positive_index, resolved, notes)
            log_loss = _log_loss(t[finite], rows[finite])
            brier = _brier_score(t[finite], rows[finite], positive_index)
            if k > 2:
                notes["brier_score"] = f"multi-class Brier score: squared error summed over the {k} classes, in [0, 2]"
            calibration = with_positive(
                reliability(t[finite], rows[finite], positive_index, calibration_bins),
                positive=common["positive"],
                unknown_labels=common["unknown_labels"],
            )
    return ClassificationPerformance(
        **common,
        accuracy=float(np.trace(matrix) / n),
        precision=float(scores[0]),
        recall=float(scores[1]),
        f1=float(scores[2]),
        roc_auc=roc_auc,
        log_loss=log_loss,
        calibration=calibration,
        brier_score=brier,
        average_precision=average_precision,
        per_class=per_class,
        precision_recall_curve=curve,
    )


# --- regression -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegressionPerformance:
    """Error figures of a regressor; ``mean_error`` is mean(prediction - label), positive when it over-predicts."""

    n: int
    mae: float | None
    rmse: float | None
    r2: float | None
    mean_error: float | None
    missing: int = 0
    notes: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mae": finite_or_none(self.mae),
            "rmse": finite_or_none(self.rmse),
            "r2": finite_or_none(self.r2),
            "mean_error": finite_or_none(self.mean_error),
            "missing": self.missing,
            "notes": dict(self.notes),
        }


def regression_performance(labels: Numbers, predictions: Numbers) -> RegressionPerformance:
    """MAE, RMSE, R² and bias over rows where both label and prediction are numbers (the rest are counted)."""
    y, y_pred = as_numbers(labels, "labels"), as_numbers(predictions, "predictions")
    if y.size != y_pred.size:
        raise InvalidArgumentError(f"labels and predictions must be the same length; got {y.size} and {y_pred.size}")
    keep = np.isfinite(y) & np.isfinite(y_pred)
    y, y_pred = y[keep], y_pred[keep]
    n, missing = int(y.size), int((~keep).sum())
    notes: dict[str, str] = {}
    if n == 0:
        notes["all"] = "no rows with both a numeric label and a numeric prediction"
        return RegressionPerformance(0, None, None, None, None, missing, notes)
    error = y_pred - y
    residual = float(np.square(error).sum())
    total = float(np.square(y - y.mean()).sum())
    r2: float | None = None
    if n < 2:
        notes["r2"] = "R² needs at least two rows"
    elif total == 0:
        notes["r2"] = "R² is undefined when every label is the same"
    else:
        r2 = 1 - residual / total
    return RegressionPerformance(
        n, float(np.abs(error).mean()), math.sqrt(residual / n), r2, float(error.mean()), missing, notes
    )
