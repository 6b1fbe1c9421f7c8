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
from statistics import NormalDist
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.jsonsafe import finite_or_none, json_value
from shipyard.errors import InvalidArgumentError

DEFAULT_CALIBRATION_BINS = 10
# Same 20 bins as the serving windows' confidence histogram (``core.window``), so stored windows feed the
# label-free estimate directly.
CONFIDENCE_BINS = 20
# A calibrator bin with few reference rows is pulled towards the model's own confidence as if this many
# extra rows had been exactly as accurate as the model claims: empty bins fall back to "trust the model".
CALIBRATOR_PRIOR_ROWS = 10.0
# Probabilities a hair outside [0, 1] (float32 softmax, rounding) are clipped; anything further is a bug.
PROBABILITY_TOLERANCE = 1e-6
MAX_UNKNOWN_SHOWN = 10

# Labels, predictions and classes may be any values (strings, ints, None for "not known yet"), which numpy's
# ``ArrayLike`` does not admit; numbers may have gaps (None) that are counted as missing.
Values = ArrayLike | Sequence[Any]
Numbers = ArrayLike | Sequence[float | None]


# --- input handling ---------------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_1d(values: Values, name: str) -> np.ndarray:
    """One column of labels, predictions or group values, keeping mixed types apart (0 is not "0")."""
    array = np.asarray(values)
    if array.dtype.kind in "US" and not isinstance(values, np.ndarray):
        # numpy reads [0, "1"] as ["0", "1"]: keep the caller's values so 0 and "0" stay different
        as_objects = np.asarray(values, dtype=object)
        if not all(isinstance(v, str) for v in as_objects.ravel().tolist()):
            array = as_objects
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidArgumentError(f"{name} must be a one-dimensional sequence; got an array of shape {array.shape}")
    return array


def _distinct(values: np.ndarray) -> list[Any]:
    try:
        return list(np.unique(values).tolist())
    except TypeError:  # an object array mixing types cannot be sorted
        return list(dict.fromkeys(values.tolist()))


def _resolve_classes(classes: Values | None, *observed: np.ndarray) -> tuple[Any, ...]:
    """The model's classes as given, or (as scikit-learn does) the sorted labels and predictions seen."""
    if classes is not None:
        resolved = tuple(np.asarray(classes, dtype=object).ravel().tolist())
        if len(set(resolved)) != len(resolved):
            raise InvalidArgumentError(f"classes must be distinct; got {list(resolved)}")
        return resolved
    seen = {v for array in observed for v in _distinct(array) if not _is_missing(v)}
    try:
        return tuple(sorted(seen))
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in seen})
        raise InvalidArgumentError(
            f"labels and predictions mix value types ({', '.join(kinds)}), so their order is ambiguous; "
            "pass classes= in the model's order"
        ) from exc


def _encode(values: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Each value's position in ``classes``; -1 where it is not one of them."""
    index = {c: i for i, c in enumerate(classes)}

    def lookup(value: Any) -> int:
        try:
            return index.get(value, -1)
        except TypeError:  # unhashable: cannot be a class
            return -1

    try:
        uniques, inverse = np.unique(values, return_inverse=True)
    except TypeError:  # mixed types: look each row up
        return np.fromiter((lookup(v) for v in values.tolist()), dtype=np.intp, count=values.size)
    codes = np.array([lookup(u) for u in uniques.tolist()], dtype=np.intp)
    return codes[inverse.ravel()] if values.size else np.empty(0, dtype=np.intp)


def _index_of(classes: Sequence[Any], value: Any, name: str) -> int:
    for i, c in enumerate(classes):
        if c == value:
            return i
    raise InvalidArgumentError(f"{name}={value!r} is not one of the classes {[json_value(c) for c in classes]}")


def _probability_rows(probabilities: ArrayLike, k: int | None = None) -> np.ndarray:
    """A float (n, k) matrix clipped to [0, 1]; rows with a missing value keep their NaN for callers to skip."""
    proba = np.asarray(probabilities, dtype=np.float64)
    if proba.size == 0:
        return np.empty((0, k or 0))
    if proba.ndim != 2 or (k is not None and proba.shape[1] != k):
        expected = "(n, k)" if k is None else f"(n, {k})"
        raise InvalidArgumentError(
            f"probabilities must be a {expected} array, one column per class in classes order; got shape {proba.shape}"
        )
    finite = np.isfinite(proba)
    outside = finite & ((proba < -PROBABILITY_TOLERANCE) | (proba > 1 + PROBABILITY_TOLERANCE))
    if outside.any():
        raise InvalidArgumentError(f"probabilities must lie in [0, 1]; got {float(proba[outside][0])!r}")
    return np.clip(proba, 0.0, 1.0)


def _bin_index(values: np.ndarray, bins: int) -> np.ndarray:
    """Uniform bins on [0, 1]: bin i holds [i/bins, (i+1)/bins), the last one also holds 1.0."""
    return np.clip(np.floor(values * bins).astype(np.intp), 0, bins - 1)


def _check_bins(bins: int, name: str = "bins") -> None:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise InvalidArgumentError(f"{name} must be a whole number >= 1 (e.g. 10), got {bins!r}")


# --- calibration ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One bin of the reliability curve: mean predicted probability against the observed frequency."""

    low: float
    high: float
    count: int
    mean_predicted: float | None
    fraction_positive: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "count": self.count,
            "mean_predicted": finite_or_none(self.mean_predicted),
            "fraction_positive": finite_or_none(self.fraction_positive),
        }


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Expected calibration error and the reliability curve behind it.

    ``method`` says what was compared: ``positive_class`` (the positive class's probability against whether
    the label is that class; binary models) or ``top_label`` (the highest probability against whether the
    top class is right; multiclass models), so a stored ECE is never read against the wrong definition.
    """

    method: str
    positive: Any
    n: int
    ece: float | None
    bins: tuple[ReliabilityBin, ...]
    unknown_labels: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "positive": json_value(self.positive),
            "n": self.n,
            "ece": finite_or_none(self.ece),
            "bins": [b.to_dict() for b in self.bins],
            "unknown_labels": self.unknown_labels,
        }


def _calibration(codes: np.ndarray, proba: np.ndarray, positive_index: int | None, bins: int) -> CalibrationResult:
    if positive_index is not None:
        method, predicted, outcome = "positive_class", proba[:, positive_index], codes == positive_index
    else:
        method = "top_label"
        predicted = proba.max(axis=1) if proba.size else np.empty(0)
        outcome = proba.argmax(axis=1) == codes if proba.size else np.empty(0, dtype=bool)
    index = _bin_index(predicted, bins)
    counts = np.bincount(index, minlength=bins)
    sum_predicted = np.bincount(index, weights=predicted, minlength=bins)
    sum_outcome = np.bincount(index, weights=outcome.astype(np.float64), minlength=bins)
    n = int(codes.size)
    curve = tuple(
        ReliabilityBin(
            low=i / bins,
            high=(i + 1) / bins,
            count=int(counts[i]),
            mean_predicted=float(sum_predicted[i] / counts[i]) if counts[i] else None,
            fraction_positive=float(sum_outcome[i] / counts[i]) if counts[i] else None,
        )
        for i in range(bins)
    )
    ece = float(np.abs(sum_predicted - sum_outcome).sum() / n) if n else None
    return CalibrationResult(method, None, n, ece, curve)


def calibration_curve(
    labels: Values,
    probabilities: ArrayLike,
    classes: Values,
    *,
    bins: int = DEFAULT_CALIBRATION_BINS,
    positive: Any = None,
) -> CalibrationResult:
    """How far predicted probabilities are from observed frequencies (ECE), bin by bin on [0, 1].

    Binary models (or any model given ``positive``) are judged on the positive class's probability, which is
    what a threshold acts on; multiclass models on top-label confidence, which is what users read.
    """
    _check_bins(bins)
    y = as_1d(labels, "labels")
    resolved = _resolve_classes(classes)
    proba = _probability_rows(probabilities, len(resolved))
    if proba.shape[0] != y.size:
        raise InvalidArgumentError(f"labels has {y.size} rows but probabilities has {proba.shape[0]}")
    positive_index = _default_positive(resolved, positive)
    codes = _encode(y, resolved)
    keep = (codes >= 0) & np.isfinite(proba).all(axis=1)
    result = _calibration(codes[keep], proba[keep], positive_index, bins)
    positive_label = resolved[positive_index] if positive_index is not None else None
    return _with(result, positive=positive_label, unknown_labels=int((codes < 0).sum()))


def _with(result: CalibrationResult, *, positive: Any, unknown_labels: int) -> CalibrationResult:
    return CalibrationResult(result.method, positive, result.n, result.ece, result.bins, unknown_labels)


def _default_positive(classes: Sequence[Any], positive: Any) -> int | None:
    """Index of the class scored one-vs-rest: as given, else the second of two classes (scikit-learn's
    ``pos_label=1`` for 0/1 labels); None for multiclass models, which are macro-averaged."""
    if positive is not None:
        return _index_of(classes, positive, "positive")
    return 1 if len(classes) == 2 else None


# --- classification -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClassificationPerformance:
    """How a classifier did on labelled rows. ``average`` says how precision, recall, F1 and ROC AUC were
    taken: ``binary`` (for ``positive``), ``one_vs_rest`` (a multiclass model scored for ``positive``) or
    ``macro`` (unweighted mean over classes). Confusion matrix rows are true classes, columns predicted."""

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
            "log_loss": finite_or_none(self.log_loss),
            "calibration": self.calibration.to_dict() if self.calibration is not None else None,
            "confusion_matrix": {
                "labels": [json_value(c) for c in self.classes],
                "matrix": [list(row) for row in self.confusion_matrix],
            },
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
    """Accuracy, precision, recall, F1, ROC AUC, log loss, calibration and the confusion matrix.

    ``probabilities`` is (n, k) in ``classes`` order (the model's); without it the probability-based figures
    are None. Binary models are scored for ``positive`` (default: the second class, as scikit-learn does),
    multiclass models macro-averaged unless ``positive`` picks one class to score one-vs-rest.
    """
    _check_bins(calibration_bins, "calibration_bins")
    y, y_pred = as_1d(labels, "labels"), as_1d(predictions, "predictions")
    if y.size != y_pred.size:
        raise InvalidArgumentError(f"labels and predictions must be the same length; got {y.size} and {y_pred.size}")
    resolved = _resolve_classes(classes, y, y_pred)
    k = len(resolved)
    proba: np.ndarray | None = None
    if probabilities is not None:
        proba = _probability_rows(probabilities)
        if proba.shape[0] != y.size:
            raise InvalidArgumentError(f"labels has {y.size} rows but probabilities has {proba.shape[0]}")
        if y.size and proba.shape[1] != k:
            hint = "" if classes is not None else "; pass classes= in the model's order"
            raise InvalidArgumentError(
                f"probabilities has {proba.shape[1]} columns but there are {k} classes {list(resolved)}{hint}"
            )
    positive_index = _default_positive(resolved, positive)
    codes, predicted_codes = _encode(y, resolved), _encode(y_pred, resolved)
    scored = (codes >= 0) & (predicted_codes >= 0)
    unknown = y[codes < 0]
    unknown_values = tuple(str(v) for v in _distinct(unknown)[:MAX_UNKNOWN_SHOWN]) if unknown.size else ()
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

    roc_auc = log_loss = calibration = None
    if proba is None:
        notes["probabilities"] = "no probabilities given: ROC AUC, log loss and calibration need them"
    else:
        rows = proba[scored]
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            notes["probabilities"] = (
                f"{int((~finite).sum())} scored rows have no probabilities and are left out of ROC AUC, log loss "
                "and calibration"
            )
        if finite.any():
            roc_auc = _roc_auc(t[finite], rows[finite], positive_index, resolved, notes)
            log_loss = _log_loss(t[finite], rows[finite])
            calibration = _with(
                _calibration(t[finite], rows[finite], positive_index, calibration_bins),
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


def _numbers(values: Numbers, name: str) -> np.ndarray:
    try:
        return as_1d(np.asarray(values, dtype=np.float64), name)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name} must be numbers: {exc}") from exc


def regression_performance(labels: Numbers, predictions: Numbers) -> RegressionPerformance:
    """MAE, RMSE, R² and bias over rows where both label and prediction are numbers (the rest are counted)."""
    y, y_pred = _numbers(labels, "labels"), _numbers(predictions, "predictions")
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


# --- label-free accuracy estimate (confidence-based, as NannyML's CBPE) ------------------------------------


@runtime_checkable
class ConfidenceStats(Protocol):
    """What the estimate needs from a window: row count, sum of top-label confidence, and its histogram."""

    @property
    def n(self) -> int: ...
    @property
    def total(self) -> float: ...
    @property
    def histogram(self) -> tuple[int, ...]: ...


@dataclass(frozen=True, slots=True)
class ConfidenceSummary:
    """Sufficient statistics of top-label confidence: merge windows by addition, estimate from the merge.

    A histogram-binning calibrator is constant within a bin, so the calibrated estimate from the histogram
    equals the one from the rows exactly.
    """

    n: int = 0
    total: float = 0.0
    histogram: tuple[int, ...] = (0,) * CONFIDENCE_BINS

    @classmethod
    def empty(cls, bins: int = CONFIDENCE_BINS) -> ConfidenceSummary:
        _check_bins(bins)
        return cls(0, 0.0, (0,) * bins)

    @classmethod
    def of(cls, probabilities: ArrayLike, *, bins: int = CONFIDENCE_BINS) -> ConfidenceSummary:
        """Summarise (n, k) class probabilities; rows with a missing probability are skipped."""
        _check_bins(bins)
        proba = _probability_rows(probabilities)
        proba = proba[np.isfinite(proba).all(axis=1)]
        top = proba.max(axis=1) if proba.size else np.empty(0)
        counts = np.bincount(_bin_index(top, bins), minlength=bins)
        return cls(int(top.size), float(top.sum()), tuple(int(c) for c in counts))

    def merge(self, other: ConfidenceStats) -> ConfidenceSummary:
        if len(self.histogram) != len(other.histogram):
            raise InvalidArgumentError(
                f"cannot merge confidence summaries with {len(self.histogram)} and {len(other.histogram)} bins"
            )
        merged = tuple(a + b for a, b in zip(self.histogram, other.histogram, strict=True))
        return ConfidenceSummary(self.n + other.n, self.total + other.total, merged)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "total": self.total, "histogram": list(self.histogram)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceSummary:
        return cls(int(data["n"]), float(data["total"]), tuple(int(c) for c in data["histogram"]))


def _isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the closest non-decreasing sequence (higher confidence is never
    mapped to lower accuracy, which noisy reference bins would otherwise do)."""
    blocks: list[list[float]] = []  # [value, weight, length]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks[-1]
            blocks[-1] = [(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2]
    return np.repeat([b[0] for b in blocks], [int(b[2]) for b in blocks])


CALIBRATION_DATA = ("training", "holdout")
"""Where a calibrator's labelled rows came from: the rows the model was fitted on, or rows it never saw.
Training rows flatter a model that overfits (a forest is nearly always right on its own training rows), so
the card and the report say which it was."""


@dataclass(frozen=True, slots=True)
class ConfidenceCalibrator:
    """Maps a top-label confidence bin to the accuracy seen there on labelled reference data.

    Plain lists in ``to_dict`` so it is stored as JSON with the model version; ``counts`` is the reference
    evidence behind each bin and ``data`` says which rows it came from (see ``CALIBRATION_DATA``).
    """

    accuracy: tuple[float, ...]
    counts: tuple[int, ...]
    unknown_labels: int = 0
    data: str = "training"

    def __post_init__(self) -> None:
        if not self.accuracy or len(self.accuracy) != len(self.counts):
            raise InvalidArgumentError(
                f"a confidence calibrator needs one accuracy and one count per bin; got {len(self.accuracy)} "
                f"accuracies and {len(self.counts)} counts"
            )
        if not all(math.isfinite(a) and 0.0 <= a <= 1.0 for a in self.accuracy):
            raise InvalidArgumentError(f"calibrated accuracies must be fractions in [0, 1]; got {list(self.accuracy)}")
        if self.data not in CALIBRATION_DATA:
            raise InvalidArgumentError(f"calibration data must be one of {list(CALIBRATION_DATA)}; got {self.data!r}")

    @property
    def bins(self) -> int:
        return len(self.accuracy)

    @property
    def rows(self) -> int:
        """Labelled rows the calibrator was fitted on."""
        return sum(self.counts)

    def apply(self, confidence: ArrayLike) -> np.ndarray:
        """Calibrated expected correctness of each row with this top-label confidence."""
        values = np.asarray(confidence, dtype=np.float64)
        return np.asarray(self.accuracy)[_bin_index(values, self.bins)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "histogram_binning",
            "bins": self.bins,
            "accuracy": list(self.accuracy),
            "counts": list(self.counts),
            "unknown_labels": self.unknown_labels,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceCalibrator:
        if data.get("kind", "histogram_binning") != "histogram_binning":
            raise InvalidArgumentError(
                f"unknown confidence calibrator kind {data.get('kind')!r}; expected 'histogram_binning'"
            )
        return cls(
            tuple(float(a) for a in data["accuracy"]),
            tuple(int(c) for c in data["counts"]),
            int(data.get("unknown_labels", 0)),
            str(data.get("data", "training")),
        )


def fit_confidence_calibrator(
    reference_labels: Values,
    reference_probabilities: ArrayLike,
    classes: Values,
    *,
    bins: int = CONFIDENCE_BINS,
    prior_rows: float = CALIBRATOR_PRIOR_ROWS,
    data: str = "training",
) -> ConfidenceCalibrator:
    """Learn, from labelled reference data, how often the top class is right at each confidence level.

    An over- or under-confident model then still gives a sound label-free estimate. Each bin's accuracy is
    shrunk towards the model's own confidence by ``prior_rows`` pseudo-rows (thin bins stay near "trust the
    model"), then made non-decreasing. ``data`` records whether the rows were the model's training rows or a
    holdout it never saw (preferable: training rows make an overfit model look well calibrated).

    Top-label binning, not NannyML's per-class isotonic regression: it needs only the windows' confidence
    histogram, and on seeded benchmarks (a few thousand reference rows) it lands within a few thousandths
    of NannyML's CBPE and no further from the realised accuracy.
    """
    _check_bins(bins)
    if not (math.isfinite(prior_rows) and prior_rows > 0):
        raise InvalidArgumentError(f"prior_rows must be a number > 0 (e.g. 10), got {prior_rows!r}")
    y = as_1d(reference_labels, "reference_labels")
    resolved = _resolve_classes(classes)
    proba = _probability_rows(reference_probabilities, len(resolved))
    if proba.shape[0] != y.size:
        raise InvalidArgumentError(
            f"reference_labels has {y.size} rows but reference_probabilities has {proba.shape[0]}"
        )
    codes = _encode(y, resolved)
    keep = (codes >= 0) & np.isfinite(proba).all(axis=1)
    rows = proba[keep]
    confidence = rows.max(axis=1) if rows.size else np.empty(0)
    correct = (rows.argmax(axis=1) == codes[keep]).astype(np.float64) if rows.size else np.empty(0)
    index = _bin_index(confidence, bins)
    counts = np.bincount(index, minlength=bins)
    hits = np.bincount(index, weights=correct, minlength=bins)
    summed = np.bincount(index, weights=confidence, minlength=bins)
    midpoints = (np.arange(bins) + 0.5) / bins
    claimed = np.divide(summed, counts, out=midpoints.copy(), where=counts > 0)
    shrunk = (hits + prior_rows * claimed) / (counts + prior_rows)
    accuracy = np.clip(_isotonic(shrunk, counts + prior_rows), 0.0, 1.0)
    return ConfidenceCalibrator(
        tuple(float(a) for a in accuracy), tuple(int(c) for c in counts), int((codes < 0).sum()), data
    )


@dataclass(frozen=True, slots=True)
class AccuracyEstimate:
    """Expected accuracy without labels; ``mean_confidence`` is the model's raw claim it was derived from."""

    n: int
    accuracy: float | None
    mean_confidence: float | None
    calibrated: bool

    def difference(self, realised_accuracy: float | None) -> float | None:
        """Estimate minus realised accuracy once labels are in: positive means the estimate was too hopeful."""
        if self.accuracy is None or realised_accuracy is None or not math.isfinite(realised_accuracy):
            return None
        return self.accuracy - realised_accuracy

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": finite_or_none(self.accuracy),
            "mean_confidence": finite_or_none(self.mean_confidence),
            "calibrated": self.calibrated,
        }


def estimate_accuracy(
    source: ArrayLike | ConfidenceStats, calibrator: ConfidenceCalibrator | None = None
) -> AccuracyEstimate:
    """Expected accuracy = mean expected correctness of the top-label prediction (NannyML's CBPE).

    ``source`` is (n, k) probabilities or a merged ``ConfidenceSummary`` (any object with ``n``, ``total``
    and ``histogram``), so a month is estimated from stored windows without rescanning a prediction log.
    Assumes the predicted class is the most probable one; a custom threshold needs its own estimate.
    """
    summary: ConfidenceStats
    if isinstance(source, ConfidenceStats):
        summary = source
    else:
        bins = calibrator.bins if calibrator is not None else CONFIDENCE_BINS
        summary = ConfidenceSummary.of(cast(ArrayLike, source), bins=bins)
    n = int(summary.n)
    if n == 0:
        return AccuracyEstimate(0, None, None, calibrator is not None)
    mean_confidence = float(summary.total) / n
    if calibrator is None:
        return AccuracyEstimate(n, mean_confidence, mean_confidence, False)
    if len(summary.histogram) != calibrator.bins:
        raise InvalidArgumentError(
            f"the confidence histogram has {len(summary.histogram)} bins but the calibrator {calibrator.bins}; "
            "fit the calibrator with the same bins"
        )
    expected = float(np.dot(np.asarray(summary.histogram, dtype=np.float64), calibrator.accuracy)) / n
    return AccuracyEstimate(n, expected, mean_confidence, True)


# --- reward rate ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RewardSummary:
    """Mean reward with a confidence interval; ``interval`` names the method (``wilson`` for 0/1 rewards,
    ``t`` otherwise) and is None when there are too few rewards for one."""

    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    interval: str | None
    missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": finite_or_none(self.mean),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
            "confidence": self.confidence,
            "interval": self.interval,
            "missing": self.missing,
        }


def _wilson(successes: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval: unlike mean ± t·se it stays inside [0, 1] and is not zero-width at 0% or 100%."""
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    rate = successes / n
    denominator = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def reward_summary(rewards: Numbers, *, confidence: float = 0.95) -> RewardSummary:
    """Mean reward and its confidence interval; missing (non-finite) rewards are counted, not used."""
    if not 0 < confidence < 1:
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {confidence!r}")
    values = _numbers(rewards, "rewards")
    keep = np.isfinite(values)
    values, missing = values[keep], int((~keep).sum())
    n = int(values.size)
    if n == 0:
        return RewardSummary(0, None, None, None, confidence, None, missing)
    mean = float(values.mean())
    if np.isin(values, (0.0, 1.0)).all():
        low, high = _wilson(float(values.sum()), n, confidence)
        return RewardSummary(n, mean, low, high, confidence, "wilson", missing)
    if n < 2:
        return RewardSummary(n, mean, None, None, confidence, None, missing)
    from scipy import stats as scipy_stats  # imported when first needed: slow to import, rarely used

    half = float(scipy_stats.t.ppf((1 + confidence) / 2, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    return RewardSummary(n, mean, mean - half, mean + half, confidence, "t", missing)
