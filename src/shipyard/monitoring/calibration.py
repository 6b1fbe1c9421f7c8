"""Calibration and the label-free accuracy estimate: reliability curves, ECE, and confidence turned into accuracy.

The estimate is NannyML's CBPE over top-label confidence: windows keep a confidence histogram, a calibrator
(fitted on labelled reference rows at registration) maps each bin to the accuracy seen there, and a month is
estimated from merged histograms without rescanning a prediction log.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.core.histograms import CONFIDENCE_BINS, bin_index, check_bins
from shipyard.core.jsonsafe import finite_or_none, json_value
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.labels import Values, as_1d, encode, index_of, probability_rows, resolve_classes

DEFAULT_CALIBRATION_BINS = 10
# A calibrator bin with few reference rows is pulled towards the model's own confidence as if this many
# extra rows had been exactly as accurate as the model claims: empty bins fall back to "trust the model".
CALIBRATOR_PRIOR_ROWS = 10.0


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


def reliability(codes: np.ndarray, proba: np.ndarray, positive_index: int | None, bins: int) -> CalibrationResult:
    if positive_index is not None:
        method, predicted, outcome = "positive_class", proba[:, positive_index], codes == positive_index
    else:
        method = "top_label"
        predicted = proba.max(axis=1) if proba.size else np.empty(0)
        outcome = proba.argmax(axis=1) == codes if proba.size else np.empty(0, dtype=bool)
    index = bin_index(predicted, bins)
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
    check_bins(bins)
    y = as_1d(labels, "labels")
    resolved = resolve_classes(classes)
    proba = probability_rows(probabilities, len(resolved))
    if proba.shape[0] != y.size:
        raise InvalidArgumentError(f"labels has {y.size} rows but probabilities has {proba.shape[0]}")
    positive_index = default_positive(resolved, positive)
    codes = encode(y, resolved)
    keep = (codes >= 0) & np.isfinite(proba).all(axis=1)
    result = reliability(codes[keep], proba[keep], positive_index, bins)
    positive_label = resolved[positive_index] if positive_index is not None else None
    return with_positive(result, positive=positive_label, unknown_labels=int((codes < 0).sum()))


def with_positive(result: CalibrationResult, *, positive: Any, unknown_labels: int) -> CalibrationResult:
    return CalibrationResult(result.method, positive, result.n, result.ece, result.bins, unknown_labels)


def default_positive(classes: Sequence[Any], positive: Any) -> int | None:
    """Index of the class scored one-vs-rest: as given, else the second of two classes (scikit-learn's
    ``pos_label=1`` for 0/1 labels); None for multiclass models, which are macro-averaged."""
    if positive is not None:
        return index_of(classes, positive, "positive")
    return 1 if len(classes) == 2 else None


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
        check_bins(bins)
        return cls(0, 0.0, (0,) * bins)

    @classmethod
    def of(cls, probabilities: ArrayLike, *, bins: int = CONFIDENCE_BINS) -> ConfidenceSummary:
        """Summarise (n, k) class probabilities; rows with a missing probability are skipped."""
        check_bins(bins)
        proba = probability_rows(probabilities)
        proba = proba[np.isfinite(proba).all(axis=1)]
        top = proba.max(axis=1) if proba.size else np.empty(0)
        counts = np.bincount(bin_index(top, bins), minlength=bins)
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
    of NannyML's CBPE and no further from the realised accuracy. The per-class isotonic calibrators that
    precision, recall, F1 and ROC AUC need (``monitoring.cbpe``) are fitted on the same rows and carried in
    ``per_class``.
    """
    check_bins(bins)
    if not (math.isfinite(prior_rows) and prior_rows > 0):
        raise InvalidArgumentError(f"prior_rows must be a number > 0 (e.g. 10), got {prior_rows!r}")
    y = as_1d(reference_labels, "reference_labels")
    resolved = resolve_classes(classes)
    proba = probability_rows(reference_probabilities, len(resolved))
    if proba.shape[0] != y.size:
        raise InvalidArgumentError(
            f"reference_labels has {y.size} rows but reference_probabilities has {proba.shape[0]}"
        )
    codes = encode(y, resolved)
    keep = (codes >= 0) & np.isfinite(proba).all(axis=1)
    rows = proba[keep]
    confidence = rows.max(axis=1) if rows.size else np.empty(0)
    correct = (rows.argmax(axis=1) == codes[keep]).astype(np.float64) if rows.size else np.empty(0)
    index = bin_index(confidence, bins)
    counts = np.bincount(index, minlength=bins)
    hits = np.bincount(index, weights=correct, minlength=bins)
    summed = np.bincount(index, weights=confidence, minlength=bins)
    midpoints = (np.arange(bins) + 0.5) / bins
    claimed = np.divide(summed, counts, out=midpoints.copy(), where=counts > 0)
    shrunk = (hits + prior_rows * claimed) / (counts + prior_rows)
    accuracy = np.clip(_isotonic(shrunk, counts + prior_rows), 0.0, 1.0)
    from shipyard.monitoring.cbpe_calibration import fit_class_calibrators

    per_class = fit_class_calibrators(codes[keep], rows) if rows.shape[0] and rows.shape[1] >= 2 else None
    return ConfidenceCalibrator(
        tuple(float(a) for a in accuracy), tuple(int(c) for c in counts), int((codes < 0).sum()), data, per_class
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
        summary = ConfidenceSummary.of(source, bins=bins)
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
