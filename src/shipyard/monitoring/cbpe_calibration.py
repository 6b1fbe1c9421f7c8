"""CBPE's per-class calibration: fitted at registration as NannyML fits it, applied to served rows quickly.

Each class's probability gets scikit-learn's isotonic regression against "the label is this class", kept
only where it lowers the expected calibration error on held-out rows (NannyML's ``needs_calibration``: ten
stratified 10% splits, equal-count bins), so the calibrated probabilities, and every estimate built on them,
equal NannyML's. Serving applies them to a batch through a lookup table of straight lines.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from shipyard.core.calibrator import ClassCalibrator, ConfidenceCalibrator

CV_SPLITS, CV_TEST_SHARE, CV_BINS, CV_SEED = 10, 0.1, 10, 42


def fit_class_calibrators(codes: np.ndarray, proba: np.ndarray) -> tuple[ClassCalibrator, ...]:
    """One calibrator per class from labelled rows (``codes``: each row's class index).

    A binary model gets an identity calibrator for its negative class: its calibrated probability is one
    minus the positive class's, as in NannyML's binary CBPE. Uses scikit-learn, which registration has loaded.
    """
    classes = proba.shape[1]
    if classes == 2:
        return (ClassCalibrator(), _fit_one(codes == 1, proba[:, 1]))
    return tuple(_fit_one(codes == c, proba[:, c]) for c in range(classes))


def _fit_one(outcome: np.ndarray, probability: np.ndarray) -> ClassCalibrator:
    from sklearn.isotonic import IsotonicRegression

    if not needs_calibration(outcome, probability):
        return ClassCalibrator()
    fitted = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(probability, outcome.astype(np.float64))
    thresholds = np.clip(np.asarray(fitted.X_thresholds_, dtype=np.float64), 0.0, 1.0)
    values = np.clip(np.asarray(fitted.y_thresholds_, dtype=np.float64), 0.0, 1.0)
    return ClassCalibrator(tuple(thresholds.tolist()), tuple(values.tolist()))


def needs_calibration(outcome: np.ndarray, probability: np.ndarray) -> bool:
    """Whether isotonic recalibration lowers the expected calibration error on held-out rows (NannyML's rule:
    ten stratified 10% splits, equal-count bins); a class that is never or always the label, or probabilities
    that already rank it perfectly, are left as they are."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedShuffleSplit

    y = outcome.astype(np.int64)
    if np.unique(y).size < 2 or np.bincount(y).min() < 2:
        return False
    if roc_auc_score(y, probability) > 0.999:
        return False
    splits = StratifiedShuffleSplit(n_splits=CV_SPLITS, test_size=CV_TEST_SHARE, random_state=CV_SEED)
    truth, raw, calibrated = [], [], []
    for train, test in splits.split(probability, y):
        model = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(probability[train], y[train])
        truth.append(y[test])
        raw.append(probability[test])
        calibrated.append(model.predict(probability[test]))
    y_test = np.concatenate(truth)
    return _ece(y_test, np.concatenate(raw)) > _ece(y_test, np.concatenate(calibrated))


def _ece(y: np.ndarray, probability: np.ndarray) -> float:
    """Expected calibration error over equal-count bins of the sorted probabilities (NannyML's bins: width
    ``n // bins`` rows, the last one taking the remainder)."""
    order = probability.argsort()
    size = y.size
    bins = CV_BINS if size > 2 * CV_BINS else max(size // 2, 1)
    edges = np.arange(0, size + 1, size // bins)
    edges[-1] = size
    total = 0.0
    for left, right in itertools.pairwise(edges):
        part = order[left:right]
        total += part.size * abs(float(probability[part].mean()) - float(y[part].mean()))
    return total / size


def calibrated_probabilities(proba: np.ndarray, calibrator: ConfidenceCalibrator | None) -> np.ndarray:
    """Each row's calibrated class probabilities: binary as one minus the positive class's, multiclass
    renormalised to sum to one (uniform where every class calibrates to zero), as NannyML does."""
    return calibrated_columns(np.ascontiguousarray(proba.T), calibrator).T


LOOKUP_CELLS = 1 << 16


@lru_cache(maxsize=32)
def _lookup(thresholds: tuple[float, ...], values: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A calibrator as a table over 65,536 equal cells of [0, 1]: where no threshold falls inside a cell the
    calibrator is one straight line there (intercept, slope); cells holding a threshold are marked inexact."""
    edges = np.linspace(0.0, 1.0, LOOKUP_CELLS + 1)
    at = np.interp(edges, np.asarray(thresholds), np.asarray(values))
    slope = np.diff(at) / np.diff(edges)
    intercept = at[:-1] - slope * edges[:-1]
    inexact = np.zeros(LOOKUP_CELLS, dtype=bool)
    inside = np.asarray(thresholds) * LOOKUP_CELLS
    cells = np.clip(np.floor(inside).astype(np.intp), 0, LOOKUP_CELLS - 1)
    inexact[cells[inside > np.floor(inside)]] = True  # a threshold strictly inside the cell: a kink there
    return intercept, slope, inexact


def _apply(calibrator: ClassCalibrator, probability: np.ndarray) -> np.ndarray:
    """``calibrator.apply``, the same values a few times faster on many rows: a straight line per cell of the
    lookup table, the exact interpolation only for rows in the few cells that hold a threshold."""
    if calibrator.identity or probability.size < LOOKUP_CELLS:
        return calibrator.apply(probability)
    intercept, slope, inexact = _lookup(calibrator.thresholds, calibrator.values)
    cell = np.minimum((probability * LOOKUP_CELLS).astype(np.intp), LOOKUP_CELLS - 1)
    out: np.ndarray = intercept[cell] + slope[cell] * probability
    slow = inexact[cell]
    if slow.any():
        out[slow] = calibrator.apply(probability[slow])
    return out


def calibrated_positive(positive: np.ndarray, calibrator: ConfidenceCalibrator | None) -> np.ndarray:
    """A binary model's calibrated positive-class probability (NannyML calibrates only that column)."""
    per_class = calibrator.per_class if calibrator is not None else None
    if per_class is None or len(per_class) != 2 or per_class[1].identity:
        return positive
    calibrated: np.ndarray = np.clip(_apply(per_class[1], positive), 0.0, 1.0)
    return calibrated


def calibrated_columns(columns: np.ndarray, calibrator: ConfidenceCalibrator | None) -> np.ndarray:
    """``calibrated_probabilities`` on a (k, n) array of class columns, each contiguous (the fast layout)."""
    per_class = calibrator.per_class if calibrator is not None else None
    classes = columns.shape[0]
    if per_class is None or len(per_class) != classes:
        return columns
    if classes == 2:
        positive = calibrated_positive(columns[1], calibrator)
        return np.stack([1.0 - positive, positive])
    out = np.empty_like(columns)
    for c in range(classes):
        out[c] = _apply(per_class[c], columns[c])
    total = out.sum(axis=0)
    zero = total <= 0
    if zero.any():
        out[:, zero], total[zero] = 1.0 / classes, 1.0
    out /= total
    return out
