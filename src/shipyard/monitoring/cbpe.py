"""Confidence-based performance estimation (CBPE): precision, recall, F1, ROC AUC and accuracy without labels.

As NannyML's CBPE: each class's probability is calibrated one-vs-rest on labelled reference rows (isotonic
regression, kept only where it lowers the cross-validated calibration error), multiclass rows renormalised
to sum to one, and each row then counts as an expected true positive of class c with its calibrated
probability p̂_c. Precision, recall and F1 follow from the expected confusion counts; ROC AUC from ranking
the rows by the model's raw probability with p̂ as the expected positive weight.

The calibration lives in ``monitoring.cbpe_calibration``. What makes it mergeable: the serving worker
calibrates a batch with the version's calibrator (off the request path) and adds it to a fixed histogram per
class: the class's raw probability in ``CBPE_EDGES`` bins, split
by whether the row was predicted as that class, holding per bin the row count, the sum of p̂_c and the sum of
p̂_c² (for the sampling error). Precision, recall, F1 and accuracy from it equal NannyML's from the rows
exactly; ROC AUC differs only by rows in one bin counting as ties (bins are 0.01 wide in the middle and a
quarter of a logit unit in the tails, where overconfident models pile up).

Sampling error: the rows' labels are taken as independent Bernoulli(p̂) draws, so the expected counts have
variance Σ p̂(1 - p̂) (from the per-bin sums of p̂ and p̂²); accuracy and precision are means of such draws,
recall, F1 and ROC AUC functions of them (delta method, each row's effect the same within a bin). Macro
averages treat classes as independent (sum of variances over K²). Checked by drawing labels from p̂: the
realised metrics' spread is within 15% of the stated error (tests/unit/monitoring/test_cbpe.py).
Bands are the estimate ± 3 standard errors, clipped to [0, 1], as NannyML draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.cbpe_calibration import calibrated_columns, calibrated_positive
from shipyard.monitoring.cbpe_records import CbpeEstimate, ClassEstimate, MetricEstimate
from shipyard.monitoring.labels import probability_rows

MIN_ROWS = 30
"""Fewer rows than this and no metric is estimated: the band would be wider than the metric's range."""
BAND_ERRORS = 3.0
"""The band is the estimate ± this many standard errors (NannyML's sampling-error band)."""


LOGIT_START, LOGIT_STEP = -16.0, 0.25
MIDDLE_LOW, MIDDLE_HIGH, MIDDLE_STEP = 0.02, 0.98, 0.01


def _edges() -> np.ndarray:
    """Fine where calibrated probabilities change fastest for confident models: 0.01 steps on [0.02, 0.98],
    a quarter logit unit below and above it (down to 1e-7), so a model that says 0.9999 and one that says
    0.999999 land in different bins."""
    middle = np.linspace(MIDDLE_LOW, MIDDLE_HIGH, round((MIDDLE_HIGH - MIDDLE_LOW) / MIDDLE_STEP) + 1)
    logits = np.arange(LOGIT_START, math.log(MIDDLE_LOW / (1 - MIDDLE_LOW)), LOGIT_STEP)
    low = 1.0 / (1.0 + np.exp(-logits))
    return np.concatenate([[0.0], low, middle, (1.0 - low)[::-1], [1.0]])


CBPE_EDGES = _edges()
CBPE_BINS = len(CBPE_EDGES) - 1
TAIL_BINS = (CBPE_BINS - round((MIDDLE_HIGH - MIDDLE_LOW) / MIDDLE_STEP)) // 2


def bin_of(probability: np.ndarray) -> np.ndarray:
    """The ``CBPE_EDGES`` bin of each probability, by arithmetic rather than a search (a few times faster
    on a million rows): the uniform middle directly, the tails from the logit. A value on an edge may fall
    on either side of it, the same way every time."""
    index = np.floor((probability - MIDDLE_LOW) * (1 / MIDDLE_STEP)).astype(np.intp) + TAIL_BINS
    low, high = probability < MIDDLE_LOW, probability >= MIDDLE_HIGH
    if low.any():
        index[low] = _tail(probability[low])
    if high.any():
        index[high] = CBPE_BINS - 1 - _tail(1.0 - probability[high])
    return index


def _tail(q: np.ndarray) -> np.ndarray:
    """Tail bin (0 = nearest the end) of small probabilities ``q`` < MIDDLE_LOW, from their logit."""
    with np.errstate(divide="ignore"):
        logit = np.log(q) - np.log1p(-q)
    steps = np.floor((logit - LOGIT_START) / LOGIT_STEP) + 1
    index: np.ndarray = np.clip(np.nan_to_num(steps, neginf=0.0), 0, TAIL_BINS - 1).astype(np.intp)
    return index


# --- the window's state ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class ClassProbabilities:
    """Per class and bin of its raw probability, split by predicted-as-that-class (index 1) or not (0): row
    counts, sums of the calibrated probability and of its square. Arrays of shape (classes, 2, ``CBPE_BINS``);
    windows merge by addition."""

    counts: np.ndarray
    sums: np.ndarray
    squares: np.ndarray

    @classmethod
    def empty(cls, classes: int) -> ClassProbabilities:
        shape = (classes, 2, CBPE_BINS)
        return cls(np.zeros(shape, dtype=np.int64), np.zeros(shape), np.zeros(shape))

    @property
    def classes(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n(self) -> int:
        return int(self.counts[0].sum()) if self.classes else 0

    @classmethod
    def of(cls, probabilities: ArrayLike, calibrator: ConfidenceCalibrator | None = None) -> ClassProbabilities:
        """Summarise (n, k) raw class probabilities; rows with a missing probability are skipped.

        A binary model's negative class is the mirror of its positive one (p0 = 1 - p1, predicted when the
        positive is not), so only the positive class is binned and the other is derived from it."""
        proba = _finite_rows(probabilities)
        classes = proba.shape[1]
        state = cls.empty(classes)
        if not proba.shape[0] or classes < 2:
            return state
        columns = np.ascontiguousarray(proba.T)
        size = 2 * CBPE_BINS
        if classes == 2:  # argmax of two columns, ties to the first
            hits, calibrated = [(1, columns[1] > columns[0])], calibrated_positive(columns[1], calibrator)[None]
        else:
            predicted = proba.argmax(axis=1)
            hits, calibrated = [(c, predicted == c) for c in range(classes)], calibrated_columns(columns, calibrator)
        for c, hit in hits:
            cell = bin_of(columns[c])
            cell[hit] += CBPE_BINS
            p = calibrated[c if classes > 2 else 0]
            state.counts[c] = np.bincount(cell, minlength=size).reshape(2, CBPE_BINS)
            state.sums[c] = np.bincount(cell, weights=p, minlength=size).reshape(2, CBPE_BINS)
            state.squares[c] = np.bincount(cell, weights=p * p, minlength=size).reshape(2, CBPE_BINS)
        if classes == 2:
            counts, sums = state.counts[1][::-1, ::-1], state.sums[1][::-1, ::-1]
            state.counts[0] = counts
            state.sums[0] = counts - sums
            state.squares[0] = counts - 2 * sums + state.squares[1][::-1, ::-1]
        return state

    def merge(self, other: ClassProbabilities) -> ClassProbabilities:
        if self.counts.shape != other.counts.shape:
            raise InvalidArgumentError(
                f"cannot merge class-probability histograms of shape {self.counts.shape} and {other.counts.shape}"
            )
        return ClassProbabilities(self.counts + other.counts, self.sums + other.sums, self.squares + other.squares)

    def to_dict(self) -> dict[str, Any]:
        """Only the cells that hold rows, by their flat index: a quiet window stays a few hundred bytes."""
        flat = self.counts.ravel()
        cells = np.flatnonzero(flat)
        return {
            "classes": self.classes,
            "bins": CBPE_BINS,
            "cells": cells.tolist(),
            "counts": flat[cells].tolist(),
            "sums": self.sums.ravel()[cells].tolist(),
            "squares": self.squares.ravel()[cells].tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassProbabilities | None:
        """None when the window was stored with other bins (then it cannot be read against these)."""
        if int(data.get("bins", -1)) != CBPE_BINS:
            return None
        state = cls.empty(int(data["classes"]))
        cells = np.asarray(data["cells"], dtype=np.int64)
        state.counts.ravel()[cells] = np.asarray(data["counts"], dtype=np.int64)
        state.sums.ravel()[cells] = np.asarray(data["sums"], dtype=np.float64)
        state.squares.ravel()[cells] = np.asarray(data["squares"], dtype=np.float64)
        return state


def _finite_rows(probabilities: ArrayLike) -> np.ndarray:
    """The rows as a float matrix, without a copy when every value is already a probability (the common
    case, checked by one min and one max); else validated, clipped and rid of rows with a missing value."""
    proba = np.asarray(probabilities, dtype=np.float64)
    if proba.ndim == 2 and proba.size:
        low, high = float(proba.min()), float(proba.max())
        if low >= 0.0 and high <= 1.0:  # NaN compares false: falls through
            return proba
    rows = probability_rows(proba)
    finite: np.ndarray = rows[np.isfinite(rows).all(axis=1)]
    return finite


# --- the estimate -------------------------------------------------------------------------------------


def _band(value: float | None, variance: float | None, reason: str | None = None) -> MetricEstimate:
    if value is None or not math.isfinite(value):
        return MetricEstimate.missing(reason or "not defined for this window")
    if variance is None or not math.isfinite(variance):
        return MetricEstimate(value, None, None, None, None)
    error = math.sqrt(max(variance, 0.0))
    return MetricEstimate(
        value, error, max(0.0, value - BAND_ERRORS * error), min(1.0, value + BAND_ERRORS * error), None
    )


def _auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Expected ROC AUC from per-bin expected positives and negatives, bins ordered by raw score; rows in one
    bin are ties (half a pair each)."""
    total_pos, total_neg = float(positive.sum()), float(negative.sum())
    if total_pos <= 0 or total_neg <= 0:
        return None
    below = np.cumsum(negative) - negative
    return float((positive * (below + 0.5 * negative)).sum() / (total_pos * total_neg))


def _auc_variance(auc: float, counts: np.ndarray, sums: np.ndarray, squares: np.ndarray) -> float:
    """Delta method over the rows' Bernoulli labels: a row's label moves AUC by (negatives ranked below it
    minus positives ranked above it, ties half) / (P N) minus AUC (1/P - 1/N), the same for every row of a
    bin; the variance is the sum of that squared times each bin's Σ p̂(1 - p̂)."""
    positive, variance = sums.sum(axis=0), (sums - squares).sum(axis=0)
    negative = counts.sum(axis=0) - positive
    total_pos, total_neg = float(positive.sum()), float(negative.sum())
    below = np.cumsum(negative) - negative
    above = positive.sum() - np.cumsum(positive)
    slope = (below + 0.5 * negative - above - 0.5 * positive) / (total_pos * total_neg)
    slope -= auc * (1 / total_pos - 1 / total_neg)
    return float((slope * slope * variance).sum())


def _class_estimate(state: ClassProbabilities, c: int, label: Any, name: str) -> ClassEstimate:
    counts, sums, squares = state.counts[c], state.sums[c], state.squares[c]
    predicted = int(counts[1].sum())
    tp, fn = float(sums[1].sum()), float(sums[0].sum())
    var_tp, var_fn = float((sums[1] - squares[1]).sum()), float((sums[0] - squares[0]).sum())
    support = tp + fn
    metrics: dict[str, MetricEstimate] = {}
    if predicted:
        metrics["precision"] = _band(tp / predicted, var_tp / predicted**2)
    else:
        metrics["precision"] = MetricEstimate.missing(f"no row was predicted as {name}")
    if support > 0:
        recall = tp / support
        metrics["recall"] = _band(recall, (fn**2 * var_tp + tp**2 * var_fn) / support**4)
    else:
        metrics["recall"] = MetricEstimate.missing(f"the calibrated probabilities expect no row of {name}")
    denominator = predicted + support
    if denominator > 0:
        d_tp, d_fn = 2 * (predicted + fn) / denominator**2, -2 * tp / denominator**2
        metrics["f1"] = _band(2 * tp / denominator, d_tp**2 * var_tp + d_fn**2 * var_fn)
    else:
        metrics["f1"] = MetricEstimate.missing(f"no row was predicted or expected as {name}")
    positive = sums[0] + sums[1]
    negative = (counts[0] + counts[1]) - positive
    auc = _auc(positive, negative)
    if auc is None:
        metrics["roc_auc"] = MetricEstimate.missing(
            f"ROC AUC needs rows expected both as {name} and as other classes; the window has one side only"
        )
    else:
        metrics["roc_auc"] = _band(auc, _auc_variance(auc, counts, sums, squares))
    return ClassEstimate(label, predicted, support, metrics)


def _macro(classes: Sequence[ClassEstimate], metric: str) -> MetricEstimate:
    parts = [c.metrics[metric] for c in classes]
    missing = [(c, p) for c, p in zip(classes, parts, strict=True) if p.value is None]
    if missing:
        label, part = missing[0]
        return MetricEstimate.missing(f"the macro average needs every class; class {label!r}: {part.reason}")
    values = [p.value for p in parts if p.value is not None]
    errors = [p.sampling_error for p in parts if p.sampling_error is not None]
    variance = sum(e * e for e in errors) / len(parts) ** 2 if len(errors) == len(parts) else None
    return _band(sum(values) / len(values), variance)


def estimate_performance(
    state: ClassProbabilities,
    classes: Sequence[Any],
    *,
    calibrated: bool,
    note: str | None = None,
    min_rows: int = MIN_ROWS,
) -> CbpeEstimate:
    """CBPE's metrics for a window (or a merge of windows): the positive class's for a binary model (the
    second class, as scikit-learn's ``pos_label=1``), macro averages over classes for a multiclass one."""
    labels = list(classes)
    if len(labels) != state.classes:
        raise InvalidArgumentError(
            f"the window's class histogram has {state.classes} classes but the model has {len(labels)}: {labels}"
        )
    binary = len(labels) == 2
    average, positive = ("binary", labels[1]) if binary else ("macro", None)
    n = state.n
    if n < min_rows:
        reason = f"only {n} rows in the window; CBPE needs at least {min_rows}"
        missing = {m: MetricEstimate.missing(reason) for m in ("accuracy", "precision", "recall", "f1", "roc_auc")}
        return CbpeEstimate(n, average, positive, calibrated, missing, (), note)
    per_class = tuple(_class_estimate(state, c, label, f"class {label!r}") for c, label in enumerate(labels))
    correct = float(state.sums[:, 1].sum())
    variance = float((state.sums[:, 1] - state.squares[:, 1]).sum())
    metrics = {"accuracy": _band(correct / n, variance / n**2)}
    for metric in ("precision", "recall", "f1", "roc_auc"):
        metrics[metric] = per_class[1].metrics[metric] if binary else _macro(per_class, metric)
    return CbpeEstimate(n, average, positive, calibrated, metrics, per_class, note)


OLD_CALIBRATOR = (
    "uncalibrated per class: the version's calibrator was stored before per-class calibration; "
    "register it again with its training target to calibrate precision, recall, F1 and ROC AUC"
)


def window_estimate(
    state: ClassProbabilities | None,
    classes: Sequence[Any] | None,
    calibrator: ConfidenceCalibrator | None,
    *,
    uncalibrated: str,
) -> CbpeEstimate | None:
    """CBPE for a window as the report shows it: None when no stored window holds class histograms (they
    were stored before CBPE's metrics), every metric missing with the reason when the classes do not match."""
    if state is None:
        return None
    calibrated = calibrator is not None and calibrator.per_class is not None
    note = None if calibrated else (OLD_CALIBRATOR if calibrator is not None else uncalibrated)
    labels = list(classes) if classes else []
    if len(labels) != state.classes:
        reason = f"the windows hold {state.classes} class probabilities but the model names {len(labels)} classes"
        missing = {m: MetricEstimate.missing(reason) for m in ("accuracy", "precision", "recall", "f1", "roc_auc")}
        return CbpeEstimate(state.n, "macro", None, calibrated, missing, (), note)
    return estimate_performance(state, labels, calibrated=calibrated, note=note)
