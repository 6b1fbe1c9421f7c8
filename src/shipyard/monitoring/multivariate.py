"""Multivariate drift: changes in how features move together, which per-feature tests cannot see.

Two methods, for two settings:

- **PCA reconstruction error** (live, per window; NannyML's data reconstruction drift). ``fit_reconstruction``
  fits a PCA on the standardised training rows at registration (see ``shipyard.core.reconstruction`` for the
  encoding), keeping enough components for ``variance`` (65%, NannyML's default) of the variance, and
  profiles the training rows' reconstruction errors. At serving time the recorder's background thread turns
  each row into its error (``reconstruction_errors``) and counts it in the reference's error bins, so a
  window's errors merge across workers and are tested like any numeric feature (``multivariate_drift``: KS
  on small windows, PSI or normalised Wasserstein on large ones), beside NannyML's band for the mean error.
- **Domain classifier** (offline, two frames): ``domain_classifier_drift`` reports how well a gradient-boosted
  classifier tells reference rows from current rows (cross-validated ROC AUC; 0.5 when it cannot), with a
  permutation p-value. It sees any difference a model can learn, at the cost of fitting one per comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.profile import (
    FEATURE_BINS,
    MAX_LEVELS,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    numeric_profile,
)
from shipyard.core.reconstruction import ReconstructionReference
from shipyard.monitoring.drift import feature_drift
from shipyard.monitoring.drift_records import MultivariateDrift, WindowDrift
from shipyard.monitoring.thresholds import DriftThresholds, FeatureThresholds

if TYPE_CHECKING:
    import pandas as pd

RECONSTRUCTION_ERROR = "reconstruction error"
DEFAULT_VARIANCE = 0.65
"""Share of the training variance the kept components explain: NannyML's default for the same method."""
FIT_ROWS = 100_000
"""Training rows the PCA is fitted on (a seeded sample beyond that): the axes settle long before."""
BAND_SDS = 3.0
CROSS_FIT_FOLDS = 5
"""The reference errors are out-of-fold: each fifth of the training rows is reconstructed by axes fitted on the rest."""
Z_LIMIT = 1e6
MISSING = "__missing__"
"""A missing category is a level of its own in the frequency encoding (its share of the training rows)."""


# --- fitting at registration ------------------------------------------------------------------------------


def fit_reconstruction(
    frame: pd.DataFrame, *, variance: float = DEFAULT_VARIANCE, max_rows: int = FIT_ROWS, seed: int = 0
) -> ReconstructionReference | None:
    """Fit the PCA on training rows; None when fewer than two features vary (nothing joint to measure)."""
    import pandas as pd

    from shipyard.core.profile import _is_numeric

    if not 0 < variance < 1:
        raise ValueError(f"variance must be a fraction in (0, 1) such as 0.65, got {variance!r}")
    if len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=seed)
    numeric: list[str] = []
    categorical: list[str] = []
    levels: dict[str, dict[str, float]] = {}
    left_out: dict[str, str] = {}
    for name in frame.columns:
        column = frame[name]
        key = str(name)
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            left_out[key] = "a date or time: not part of the PCA"
        elif column.isna().all():
            left_out[key] = "all missing in the training data"
        elif _is_numeric(column):
            numeric.append(key)
        else:
            shares = column.astype(str).where(column.notna(), MISSING).value_counts(normalize=True)
            levels[key] = {str(level): float(s) for level, s in shares.head(MAX_LEVELS).items()}
            categorical.append(key)
    columns = tuple(numeric + categorical)
    raw = _encode(frame, columns, levels)
    means = np.nanmean(raw, axis=0) if raw.shape[1] else np.zeros(0)
    scales = np.nanstd(raw, axis=0) if raw.shape[1] else np.zeros(0)
    varying = [i for i, s in enumerate(scales) if math.isfinite(s) and s > 0]
    for i, name in enumerate(columns):
        if i not in varying:
            left_out[name] = "constant in the training data"
    if len(varying) < 2 or len(frame) < 3:
        return None
    columns = tuple(columns[i] for i in varying)
    levels = {name: shares for name, shares in levels.items() if name in columns}
    means, scales = means[varying], scales[varying]
    z = _standardised(raw[:, varying], means, scales)
    _, singular, axes = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    explained = singular**2 / float((singular**2).sum())
    # The fewest components reaching the target share; never all of them, which would reconstruct every row.
    kept = min(int(np.searchsorted(np.cumsum(explained), variance) + 1), len(columns) - 1)
    components = axes[:kept]
    errors = _out_of_fold_errors(z, kept, seed=seed)
    return ReconstructionReference(
        columns=columns,
        means=tuple(float(v) for v in means),
        scales=tuple(float(v) for v in scales),
        levels=levels,
        components=tuple(tuple(float(v) for v in row) for row in components),
        variance_kept=float(explained[:kept].sum()),
        target_variance=variance,
        errors=numeric_profile(errors, bins=FEATURE_BINS),
        rows=len(frame),
        left_out=left_out,
    )


def _encode(frame: Any, columns: tuple[str, ...], levels: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """The raw (unscaled) encoded matrix of a frame: numbers as floats, categories as their training share."""
    import pandas as pd

    out = np.empty((len(frame), len(columns)))
    for i, name in enumerate(columns):
        column = frame[name]
        if name in levels:
            shares = levels[name]
            text = column.astype(str).where(column.notna(), MISSING)
            out[:, i] = np.asarray([shares.get(v, 0.0) for v in text.tolist()], dtype=np.float64)
        else:
            out[:, i] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _standardised(raw: np.ndarray, means: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Scaled by the training moments; missing or unreadable values become the training mean (0), and values
    beyond a million standard deviations (hostile input sends 1e308) count as a million, so errors stay finite."""
    with np.errstate(invalid="ignore", over="ignore"):
        z: np.ndarray = (raw - means) / scales
    z[~np.isfinite(z)] = 0.0
    np.clip(z, -Z_LIMIT, Z_LIMIT, out=z)
    return z


def _errors(z: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Euclidean distance of each standardised row from its projection onto the kept axes.

    einsum, not ``@``: a BLAS product starts OpenBLAS threads, which cost more than these small products on
    the serving machine's shared cores (the same choice as the profiles' moments).
    """
    scores = np.einsum("nd,kd->nk", z, components)
    residual = z - np.einsum("nk,kd->nd", scores, components)
    errors: np.ndarray = np.sqrt(np.einsum("nd,nd->n", residual, residual))
    return errors


# --- serving: one batch of live rows ----------------------------------------------------------------------


def reconstruction_errors(model: ReconstructionReference, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each live row's reconstruction error, encoded as at fit time; a feature missing from the batch counts
    as missing in every row (the training mean), so a partial batch still gets an error."""
    rows = len(next(iter(columns.values()))) if columns else 0
    raw = np.full((rows, len(model.columns)), np.nan)
    for i, name in enumerate(model.columns):
        values = columns.get(name)
        if values is None:
            continue
        shares = model.levels.get(name)
        if shares is not None:
            raw[:, i] = [shares.get(_level(v), 0.0) for v in np.asarray(values, dtype=object).tolist()]
        else:
            raw[:, i] = _floats(values)
    z = _standardised(raw, np.asarray(model.means), np.asarray(model.scales))
    return _errors(z, np.asarray(model.components, dtype=np.float64).reshape(-1, len(model.columns)))


def _level(value: Any) -> str:
    """A live category as the training frame's ``astype(str)`` spelled it (booleans as True/False)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return str(value)


def _floats(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype(np.float64, copy=False)
    out = np.full(len(array), np.nan)
    for i, value in enumerate(array.tolist()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = value
    return out


# --- the window's verdict ---------------------------------------------------------------------------------


def _out_of_fold_errors(z: np.ndarray, kept: int, *, seed: int, folds: int = CROSS_FIT_FOLDS) -> np.ndarray:
    """Each training row's error from components fitted without it.

    A PCA reconstructs the rows it was fitted on better than new ones (with 20 features and 4,000 rows, by
    several percent), so in-sample errors as the reference would make clean traffic look drifted once a
    window holds a few thousand rows. Cross-fitting gives the errors new rows get from such a fit.
    """
    if len(z) < 2 * folds:
        return _errors(z, _axes(z)[:kept])
    order = np.random.default_rng(seed).permutation(len(z))
    errors = np.empty(len(z))
    for held in np.array_split(order, folds):
        fitted = np.ones(len(z), dtype=bool)
        fitted[held] = False
        errors[held] = _errors(z[held], _axes(z[fitted])[:kept])
    return errors


def _axes(z: np.ndarray) -> np.ndarray:
    return np.linalg.svd(z - z.mean(axis=0), full_matrices=False)[2]


def multivariate_drift(
    model: ReconstructionReference | None,
    live: NumericProfile | None,
    *,
    thresholds: FeatureThresholds | None = None,
    why_missing: str | None = None,
) -> MultivariateDrift:
    """Judge a window's reconstruction errors against the training rows' (never raises on odd data).

    The verdict is the errors' distribution test, decided as for a numeric feature. Beside it stands
    NannyML's view: the window's mean error against the training mean +/- 3 standard errors of a mean over
    this many rows (NannyML uses 3 standard deviations of its reference chunks' means, the same idea).
    """
    if model is None:
        return MultivariateDrift(
            drifted=False,
            note=why_missing or "the reference profile has no PCA (registered before multivariate drift)",
        )
    chosen = thresholds or FeatureThresholds()
    drift = feature_drift(RECONSTRUCTION_ERROR, model.errors, live, thresholds=chosen)
    reference_sd = math.sqrt(model.errors.variance)
    n = live.count if live is not None else 0
    live_mean = live.mean if live is not None and n else None
    half_width = BAND_SDS * reference_sd / math.sqrt(n) if n else None
    return MultivariateDrift(
        drifted=drift.drifted,
        method="pca_reconstruction",
        columns=model.columns,
        left_out=dict(model.left_out),
        components=len(model.components),
        variance_kept=model.variance_kept,
        reference_mean=model.errors.mean,
        reference_sd=reference_sd,
        live_mean=live_mean,
        lower=model.errors.mean - half_width if half_width is not None else None,
        upper=model.errors.mean + half_width if half_width is not None else None,
        error=drift,
        note=drift.note if live is not None else "no live row was profiled in this window",
    )


# --- offline: a domain classifier -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DomainClassifierResult:
    """How well a classifier separates reference rows from current rows; ``auc`` 0.5 means it cannot.

    ``threshold`` is the AUC that ``permutations`` label shufflings of the out-of-fold scores reach in a
    share ``alpha`` of cases; ``drifted`` when ``auc`` is above it. None figures come with a ``note``.
    """

    drifted: bool
    auc: float | None
    threshold: float | None
    p_value: float | None
    alpha: float
    reference_rows: int
    current_rows: int
    folds: int
    permutations: int
    features: tuple[str, ...]
    left_out: Mapping[str, str]
    note: str | None = None

    @property
    def verdict(self) -> str:
        """``drift``, ``no drift``, or ``not computed`` (then ``note`` says why)."""
        if self.auc is None:
            return "not computed"
        return "drift" if self.drifted else "no drift"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "domain_classifier",
            "verdict": self.verdict,
            "drifted": self.drifted,
            "auc": self.auc,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "folds": self.folds,
            "permutations": self.permutations,
            "features": list(self.features),
            "left_out": dict(self.left_out),
            "note": self.note,
        }


def domain_classifier_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    max_rows: int = 10_000,
    folds: int = 5,
    permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> DomainClassifierResult:
    """Cross-validated ROC AUC of a HistGradientBoostingClassifier telling ``current`` rows from ``reference``.

    Up to ``max_rows // 2`` rows of each side (a seeded sample) are used, so the cost is bounded whatever the
    frames' size. Every row is scored by a model fitted on the other folds (stratified), and the p-value is
    the share of ``permutations`` shufflings of the side labels over those fixed scores with an AUC at least
    as high. Under no drift, out-of-fold scores carry no information about the side, so this is the
    exact null of the AUC statistic; cross-validation biases the observed AUC slightly below 0.5 under no
    drift, which makes the test conservative. Columns in only one frame, or numeric in one and text in the
    other, are reported in ``left_out`` or compared as text; never raises on bad input.
    """
    from shipyard.monitoring.domain_frames import side_by_side

    if folds < 2 or permutations < 1 or max_rows < 4 or not 0 < alpha < 1:
        raise ValueError(
            f"need folds >= 2, permutations >= 1, max_rows >= 4 and alpha in (0, 1); got folds={folds!r}, "
            f"permutations={permutations!r}, max_rows={max_rows!r}, alpha={alpha!r}"
        )
    rng = np.random.default_rng(seed)
    prepared = side_by_side(reference, current, per_side=max_rows // 2, rng=rng)

    def result(**figures: Any) -> DomainClassifierResult:
        base: dict[str, Any] = {
            "drifted": False,
            "auc": None,
            "threshold": None,
            "p_value": None,
            "alpha": alpha,
            "reference_rows": prepared.reference_rows,
            "current_rows": prepared.current_rows,
            "folds": folds,
            "permutations": permutations,
            "features": prepared.features,
            "left_out": prepared.left_out,
            "note": prepared.note,
        }
        return DomainClassifierResult(**{**base, **figures})

    if prepared.note is not None:
        return result()
    smaller = min(prepared.reference_rows, prepared.current_rows)
    if smaller < 2 * folds:
        return result(note=f"too few rows: {smaller} on the smaller side, {2 * folds} needed for {folds} folds")
    scores = _out_of_fold_scores(prepared.x, prepared.side, prepared.categorical, folds=folds, seed=seed)
    auc, null = _auc_and_null(scores, prepared.side, permutations, rng)
    p_value = (1 + int(np.count_nonzero(null >= auc))) / (permutations + 1)
    threshold = float(np.quantile(null, 1 - alpha))
    return result(drifted=bool(auc > threshold), auc=auc, threshold=threshold, p_value=p_value)


def _out_of_fold_scores(x: np.ndarray, side: np.ndarray, categorical: np.ndarray, *, folds: int, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    scores = np.empty(len(side))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, side):
        model = HistGradientBoostingClassifier(
            max_iter=100, categorical_features=categorical if categorical.any() else None, random_state=seed
        )
        model.fit(x[train], side[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
    return scores


def _auc_and_null(
    scores: np.ndarray, side: np.ndarray, permutations: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """The AUC (Mann-Whitney, ties at half) and its values under ``permutations`` shufflings of the sides."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = int(side.sum())
    negatives = len(side) - positives
    offset = positives * (positives + 1) / 2

    def auc_of(chosen_ranks: np.ndarray) -> float:
        return float((chosen_ranks.sum() - offset) / (positives * negatives))

    observed = auc_of(ranks[side == 1])
    null = np.fromiter(
        (auc_of(ranks[rng.permutation(len(ranks))[:positives]]) for _ in range(permutations)),
        dtype=np.float64,
        count=permutations,
    )
    return observed, null


def with_multivariate(
    drift: WindowDrift, reference: ReferenceProfile, errors: NumericProfile | None, thresholds: DriftThresholds
) -> WindowDrift:
    """The window's drift with its multivariate section; the window drifted also when only that one did."""
    result = multivariate_drift(
        reference.multivariate,
        errors,
        thresholds=thresholds.for_feature(RECONSTRUCTION_ERROR),
        why_missing=None if reference.multivariate is not None else missing_reason(reference),
    )
    return replace(drift, multivariate=result, drifted=drift.drifted or result.drifted)


def missing_reason(reference: ReferenceProfile) -> str:
    """Why a reference profile has no PCA: too few features that vary, or stored before multivariate drift."""
    varying = [
        name
        for name, p in reference.features.items()
        if (isinstance(p, NumericProfile) and p.variance > 0)
        or (isinstance(p, CategoricalProfile) and len([n for n in p.counts.values() if n]) > 1)
    ]
    if len(varying) < 2:
        return (
            f"the training data has {len(varying)} feature(s) that vary: multivariate drift needs two or more "
            "(per-feature drift covers a single feature)"
        )
    return "the reference profile has no PCA (registered before multivariate drift): register the version again"
