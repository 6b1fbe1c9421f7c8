"""Per-row novelty: how unlike the training rows one served row is, and which features make it so.

Two methods, both fitted at registration on the training rows and scored in the serving worker's background
batch (never on the request path):

- ``mahalanobis`` (the default): the Mahalanobis distance of the standardised numeric features under a
  covariance shrunk towards the identity (``SHRINKAGE``), so a constant or collinear column still inverts,
  and a row that breaks a collinearity or moves a constant scores high, as it should. Each categorical level
  that is rare in training (under ``RARE_LEVEL_SHARE`` of rows) or never seen adds ``rare_weight``, the
  largest distance any training row had: one rare level outranks every numeric deviation seen in training.
- ``isolation_forest``: scikit-learn's, over the standardised numbers and each category's training share
  (0 for a rare or unseen level); its anomaly score lies in (0, 1).

Either way the threshold is the training scores' 99.9% quantile, so about 0.1% of rows like the training
rows are outliers; a missing value is no evidence either way (a number counts as its training mean).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from shipyard.core.outlier_model import OUTLIER_METHODS, OUTLIER_QUANTILE, RARE_LEVEL_SHARE, OutlierModel
from shipyard.core.signature import FeatureType, Signature
from shipyard.errors import InvalidArgumentError

SHRINKAGE = 0.01
"""Weight of the identity in the standardised covariance: a direction with no training variance (a constant
column, a collinear pair) gets variance 0.01, so a deviation of one training sd along it scores distance 10."""
FIT_ROWS = 100_000
"""Rows the model is fitted on at most (a seeded sample): the 99.9% quantile still rests on 100 rows above it."""
TOP_FEATURES = 3
MAX_LEVELS = 200
"""A categorical feature with more common levels than this (an identifier, free text) is left out: every
value would be new, and its levels would bloat the stored model."""
FOREST_TREES = 100


class Forest(Protocol):
    """An isolation forest as scikit-learn's: ``score_samples`` is higher for normal rows."""

    def score_samples(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Contribution:
    """Why a row is unusual: a numeric feature's standardised deviation, or a rare categorical level."""

    feature: str
    deviation: float | None = None
    """(value - training mean) / training sd; None for a categorical feature."""
    level: str | None = None
    """The level seen in under ``RARE_LEVEL_SHARE`` of training rows, or never; None for a numeric feature."""

    def to_dict(self) -> dict[str, Any]:
        if self.level is not None:
            return {"feature": self.feature, "rare_level": self.level}
        return {"feature": self.feature, "deviation": self.deviation}


@dataclass(frozen=True, slots=True)
class RowOutlier:
    """One row's score against the version's threshold, and the features contributing most."""

    score: float
    threshold: float
    outlier: bool
    contributions: tuple[Contribution, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "outlier": self.outlier,
            "top_features": [c.to_dict() for c in self.contributions],
        }


class OutlierScorer:
    """A version's outlier model made ready to score batches: arrays built once, when the version is served."""

    def __init__(self, model: OutlierModel, forest: Forest | None = None) -> None:
        if model.method == "isolation_forest" and forest is None:
            raise InvalidArgumentError("scoring with an isolation-forest outlier model needs the loaded forest")
        self.model = model
        self.forest = forest
        self.threshold = model.threshold
        self._center = np.asarray(model.center, dtype=np.float64)
        self._scale = np.asarray(model.scale, dtype=np.float64)
        p = len(model.numeric)
        self._whitening = np.asarray(model.whitening, dtype=np.float64).reshape(p, p) if model.whitening else np.eye(p)
        self._levels = {name: np.asarray(sorted(shares), dtype=str) for name, shares in model.levels.items()}

    def score(self, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        """One score per row (higher is more unusual); a feature absent from ``columns`` counts as missing."""
        z = self._standardised(columns, rows)
        if self.model.method == "isolation_forest":
            assert self.forest is not None
            return -np.asarray(self.forest.score_samples(self._forest_matrix(z, columns, rows)), dtype=np.float64)
        rare = self._rare(columns, rows).sum(axis=1)
        return np.asarray(_distance(z, self._whitening) + self.model.rare_weight * rare, dtype=np.float64)

    def explain(self, columns: Mapping[str, np.ndarray], rows: int, *, top: int = TOP_FEATURES) -> list[RowOutlier]:
        """Each row's score, verdict and its ``top`` contributions: rare levels first, then the largest
        standardised deviations (a deviation of exactly 0 explains nothing and is left out)."""
        scores = self.score(columns, rows)
        z = self._standardised(columns, rows)
        rare = self._rare(columns, rows)
        names = list(self.model.levels)
        out = []
        for i in range(rows):
            found = [Contribution(names[j], level=_level(columns[names[j]][i])) for j in np.flatnonzero(rare[i])]
            order = np.argsort(-np.abs(z[i]), kind="stable") if z.shape[1] else np.empty(0, dtype=np.int64)
            found += [Contribution(self.model.numeric[j], deviation=float(z[i, j])) for j in order if z[i, j] != 0.0]
            score = float(scores[i])
            out.append(RowOutlier(score, self.threshold, score > self.threshold, tuple(found[:top])))
        return out

    def _standardised(self, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        z = np.zeros((rows, len(self.model.numeric)), dtype=np.float64)
        for j, name in enumerate(self.model.numeric):
            values = columns.get(name)
            if values is not None:
                z[:, j] = as_float(values)
        z -= self._center
        z /= self._scale
        z[~np.isfinite(z)] = 0.0  # missing or unreadable: the training mean, so no evidence either way
        return z

    def _rare(self, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        """Per row and categorical feature: a present level that is rare or unseen in training."""
        rare = np.zeros((rows, len(self._levels)), dtype=bool)
        for j, (name, common) in enumerate(self._levels.items()):
            values = columns.get(name)
            if values is not None:
                text, missing = as_levels(values)
                rare[:, j] = ~missing & ~np.isin(text, common)
        return rare

    def _forest_matrix(self, z: np.ndarray, columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        return np.hstack([z, _shares(self.model.levels, columns, rows)])


def fit_outlier_model(
    columns: Mapping[str, np.ndarray],
    signature: Signature,
    *,
    method: str = "mahalanobis",
    dump_forest: Callable[[Any], str] | None = None,
    seed: int = 0,
) -> OutlierModel:
    """Fit ``method`` on training columns (by feature name); ``dump_forest`` turns a fitted forest into the
    text stored with the version (a skops dump in base64), since storing is not monitoring's business."""
    if method not in OUTLIER_METHODS:
        raise InvalidArgumentError(f"outlier_model must be one of {OUTLIER_METHODS}; got {method!r}")
    rows = _rows(columns)
    if rows < 2:
        raise InvalidArgumentError(f"an outlier model needs at least 2 training rows; got {rows}")
    numeric = tuple(f.name for f in signature.features if f.type.is_numeric and f.name in columns)
    categorical = [
        f.name
        for f in signature.features
        if not f.type.is_numeric and f.type is not FeatureType.DATETIME and f.name in columns
    ]
    matrix = np.column_stack([as_float(columns[n]) for n in numeric]) if numeric else np.zeros((rows, 0))
    center, scale = _center_scale(matrix)
    common = {name: _common_levels(columns[name], rows) for name in categorical}
    levels = {name: shares for name, shares in common.items() if len(shares) <= MAX_LEVELS}
    base = OutlierModel(
        method="mahalanobis",
        threshold=0.0,
        training_rows=rows,
        numeric=numeric,
        center=tuple(center.tolist()),
        scale=tuple(scale.tolist()),
        whitening=tuple(tuple(r) for r in np.eye(len(numeric)).tolist()),
        levels=levels,
    )
    scorer = OutlierScorer(base)
    z = scorer._standardised(columns, rows)
    if method == "isolation_forest":
        return _fit_forest(base, scorer, z, columns, rows, dump_forest=dump_forest, seed=seed)
    whitening = _whitening(z)
    distance = _distance(z, whitening)
    rare_weight = max(1.0, float(distance.max()) if distance.size else 0.0)
    scores = distance + rare_weight * scorer._rare(columns, rows).sum(axis=1)
    return OutlierModel(
        method="mahalanobis",
        threshold=float(np.quantile(scores, OUTLIER_QUANTILE)),
        training_rows=rows,
        numeric=numeric,
        center=base.center,
        scale=base.scale,
        whitening=tuple(tuple(r) for r in whitening.tolist()),
        levels=levels,
        rare_weight=rare_weight,
    )


def _fit_forest(
    base: OutlierModel,
    scorer: OutlierScorer,
    z: np.ndarray,
    columns: Mapping[str, np.ndarray],
    rows: int,
    *,
    dump_forest: Callable[[Any], str] | None,
    seed: int,
) -> OutlierModel:
    if dump_forest is None:
        raise InvalidArgumentError("fitting an isolation-forest outlier model needs a way to store the forest")
    from sklearn.ensemble import IsolationForest

    x = scorer._forest_matrix(z, columns, rows)
    forest = IsolationForest(n_estimators=FOREST_TREES, max_samples=min(256, rows), random_state=seed).fit(x)
    scores = -forest.score_samples(x)
    return OutlierModel(
        method="isolation_forest",
        threshold=float(np.quantile(scores, OUTLIER_QUANTILE)),
        training_rows=rows,
        numeric=base.numeric,
        center=base.center,
        scale=base.scale,
        levels=base.levels,
        forest=dump_forest(forest),
    )


def _rows(columns: Mapping[str, np.ndarray]) -> int:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InvalidArgumentError(f"training columns differ in length: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def _center_scale(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd per column over the present values; a constant or all-missing column gets sd 1 (so a
    deviation from it is measured in its own units, and the shrinkage makes it count)."""
    present = np.isfinite(matrix)
    counts = present.sum(axis=0)
    filled = np.where(present, matrix, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = np.where(counts > 0, filled.sum(axis=0) / np.maximum(counts, 1), 0.0)
        squares = np.where(present, (matrix - center) ** 2, 0.0).sum(axis=0)
        sd = np.sqrt(squares / np.maximum(counts - 1, 1))
    scale = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    return center, scale


def _whitening(z: np.ndarray) -> np.ndarray:
    """W with ||z W||^2 = z' C^-1 z, C = (1 - SHRINKAGE) cov(z) + SHRINKAGE I (positive definite by design)."""
    p = z.shape[1]
    if p == 0:
        return np.zeros((0, 0))
    covariance = np.atleast_2d(np.cov(z, rowvar=False)) if len(z) > 1 else np.zeros((p, p))
    shrunk = (1.0 - SHRINKAGE) * covariance + SHRINKAGE * np.eye(p)
    lower = np.linalg.cholesky(shrunk)
    return np.linalg.inv(lower).T


def _distance(z: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    if not z.shape[1]:
        return np.zeros(len(z))
    white = z @ whitening
    return np.asarray(np.sqrt(np.einsum("ij,ij->i", white, white)), dtype=np.float64)


def _common_levels(values: np.ndarray, rows: int) -> dict[str, float]:
    """Levels seen in at least ``RARE_LEVEL_SHARE`` of training rows, with their share of the rows."""
    text, missing = as_levels(values)
    levels, counts = np.unique(text[~missing], return_counts=True)
    cutoff = RARE_LEVEL_SHARE * rows
    return {str(level): int(n) / rows for level, n in zip(levels.tolist(), counts.tolist(), strict=True) if n >= cutoff}


def _shares(levels: Mapping[str, Mapping[str, float]], columns: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
    """Each categorical value's training share (the forest's encoding): 0 for rare or unseen, 1 for missing."""
    out = np.ones((rows, len(levels)), dtype=np.float64)
    for j, (name, shares) in enumerate(levels.items()):
        values = columns.get(name)
        if values is None:
            continue
        text, missing = as_levels(values)
        known = np.asarray(sorted(shares), dtype=str)
        weights = np.asarray([shares[k] for k in known.tolist()], dtype=np.float64)
        position = np.clip(np.searchsorted(known, text), 0, max(len(known) - 1, 0))
        hit = known[position] == text if len(known) else np.zeros(rows, dtype=bool)
        out[:, j] = np.where(missing, 1.0, np.where(hit, weights[position] if len(known) else 0.0, 0.0))
    return out


def as_float(values: np.ndarray) -> np.ndarray:
    """Numbers as floats; anything that is not a number (a string, None, a boolean in an object column) NaN."""
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype(np.float64, copy=False)
    out = np.full(len(array), np.nan)
    for i, value in enumerate(array.tolist()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = value
    return out


def as_levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Levels as the reference profile counts them (strings; booleans "True"/"False") and a missing mask
    (None, or a float NaN)."""
    array = np.asarray(values)
    if array.dtype.kind == "b":
        return np.where(array, "True", "False"), np.zeros(len(array), dtype=bool)
    if array.dtype.kind in "iuU":
        return array.astype(str), np.zeros(len(array), dtype=bool)
    if array.dtype.kind == "f":
        missing = np.isnan(array)
        return np.asarray([_level(v) for v in array.tolist()], dtype=str), missing
    items = array.tolist()
    missing = np.fromiter((_missing(v) for v in items), bool, len(items))
    return np.asarray([_level(v) for v in items], dtype=str) if items else np.empty(0, dtype=str), missing


def _missing(value: Any) -> bool:
    """None, a float NaN, or pandas' NA (a nullable column's missing value, recognised without importing pandas)."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType"


def _level(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 3.0 from a JSON number is the level "3" a CSV column of ints had
    return str(value)
