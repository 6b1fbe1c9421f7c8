"""Mergeable distribution profiles: what training data (and later, live traffic) looked like.

A reference profile fixes the bins (quantile edges for numbers, levels for categories); live windows
count into the same bins, so two profiles merge by adding counts and drift tests compare counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_BINS = 10
MAX_LEVELS = 200
OTHER = "__other__"


@dataclass(frozen=True, slots=True)
class NumericProfile:
    """Counts in bins cut at ``edges`` (outer bins open-ended), plus moments and missing count."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float | None = None
    max: float | None = None

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def variance(self) -> float:
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    @classmethod
    def empty(cls, edges: tuple[float, ...]) -> NumericProfile:
        return cls(edges, (0,) * (len(edges) + 1))

    def merge(self, other: NumericProfile) -> NumericProfile:
        """Combine two windows over the same bins (Chan et al. for the moments)."""
        if self.edges != other.edges:
            raise ValueError("cannot merge numeric profiles with different bin edges")
        n_a, n_b = self.count, other.count
        n = n_a + n_b
        if n == 0:
            return NumericProfile(self.edges, self.counts, self.missing + other.missing)
        delta = other.mean - self.mean
        mean = self.mean + delta * n_b / n
        m2 = self.m2 + other.m2 + delta * delta * n_a * n_b / n
        lows = [v for v in (self.min, other.min) if v is not None]
        highs = [v for v in (self.max, other.max) if v is not None]
        return NumericProfile(
            self.edges,
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            self.missing + other.missing,
            mean,
            m2,
            min(lows) if lows else None,
            max(highs) if highs else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "edges": list(self.edges),
            "counts": list(self.counts),
            "missing": self.missing,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min,
            "max": self.max,
        }


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    """Counts per level; levels beyond the reference's go to ``__other__`` so profiles stay small."""

    counts: Mapping[str, int]
    missing: int = 0

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    @classmethod
    def empty(cls) -> CategoricalProfile:
        return cls({})

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        merged = dict(self.counts)
        for level, n in other.counts.items():
            merged[level] = merged.get(level, 0) + n
        return CategoricalProfile(merged, self.missing + other.missing)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "counts": dict(self.counts), "missing": self.missing}


FeatureProfile = NumericProfile | CategoricalProfile


def profile_from_dict(data: Mapping[str, Any]) -> FeatureProfile:
    if data["kind"] == "numeric":
        return NumericProfile(
            tuple(data["edges"]),
            tuple(data["counts"]),
            data.get("missing", 0),
            data.get("mean", 0.0),
            data.get("m2", 0.0),
            data.get("min"),
            data.get("max"),
        )
    return CategoricalProfile(dict(data["counts"]), data.get("missing", 0))


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    """The training data's distribution per feature, of the model's predictions and of the target."""

    rows: int
    features: Mapping[str, FeatureProfile]
    prediction: FeatureProfile | None = None
    score: NumericProfile | None = None
    target: FeatureProfile | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "features": {name: p.to_dict() for name, p in self.features.items()},
        }
        for key in ("prediction", "score", "target"):
            value = getattr(self, key)
            out[key] = value.to_dict() if value is not None else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        def opt(key: str) -> Any:
            return profile_from_dict(data[key]) if data.get(key) else None

        return cls(
            rows=int(data["rows"]),
            features={name: profile_from_dict(p) for name, p in data["features"].items()},
            prediction=opt("prediction"),
            score=opt("score"),
            target=opt("target"),
        )


def quantile_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> tuple[float, ...]:
    """Interior cut points at the training quantiles, deduplicated for discrete or constant data."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ()
    cuts = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return tuple(float(c) for c in np.unique(cuts))


def numeric_profile(values: Any, edges: tuple[float, ...] | None = None) -> NumericProfile:
    """Profile numbers into fixed bins; with no edges, the bins come from these values' quantiles."""
    array = np.asarray(values, dtype=np.float64).ravel()
    missing_mask = ~np.isfinite(array)
    present = array[~missing_mask]
    if edges is None:
        edges = quantile_edges(present)
    # side='left' puts a value equal to a cut point in the bin below it: bins are (e[i-1], e[i]].
    counts = np.bincount(np.searchsorted(np.asarray(edges), present, side="left"), minlength=len(edges) + 1)
    if present.size == 0:
        return NumericProfile(edges, tuple(int(c) for c in counts), int(missing_mask.sum()))
    mean = float(present.mean())
    return NumericProfile(
        edges,
        tuple(int(c) for c in counts),
        int(missing_mask.sum()),
        mean,
        float(((present - mean) ** 2).sum()),
        float(present.min()),
        float(present.max()),
    )


def categorical_profile(values: Any, levels: tuple[str, ...] | None = None) -> CategoricalProfile:
    """Count levels as strings; beyond the known (or the most frequent) levels, count ``__other__``."""
    series = pd.Series(np.asarray(values, dtype=object).ravel())
    missing = int(series.isna().sum())
    counts = series.dropna().astype(str).value_counts()
    if levels is None:
        kept = counts.iloc[:MAX_LEVELS]
        result = {str(k): int(v) for k, v in kept.items()}
        other = int(counts.iloc[MAX_LEVELS:].sum())
    else:
        known = set(levels)
        result = {str(k): int(v) for k, v in counts.items() if k in known}
        other = int(sum(v for k, v in counts.items() if k not in known))
    if other:
        result[OTHER] = other
    return CategoricalProfile(result, missing)


def column_profile(column: pd.Series) -> FeatureProfile:
    """Numbers (and datetimes, as epoch seconds) are binned; everything else is counted by level."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return categorical_profile(column.to_numpy(dtype=object))
    if pd.api.types.is_datetime64_any_dtype(dtype):
        seconds = column.astype("int64", errors="ignore").to_numpy(dtype=np.float64) / 1e9
        return numeric_profile(np.where(column.isna().to_numpy(), np.nan, seconds))
    if pd.api.types.is_numeric_dtype(dtype):
        return numeric_profile(column.to_numpy(dtype=np.float64, na_value=np.nan))
    return categorical_profile(column.to_numpy(dtype=object))


def build_reference_profile(
    frame: pd.DataFrame,
    *,
    predictions: Any | None = None,
    classification: bool = False,
    scores: Any | None = None,
    target: Any | None = None,
) -> ReferenceProfile:
    """Profile the training rows, the model's own predictions on them, and the target if given."""
    features = {str(name): column_profile(frame[name]) for name in frame.columns}
    prediction: FeatureProfile | None = None
    if predictions is not None:
        preds = np.asarray(predictions)
        if classification or preds.dtype.kind in "OUSb":
            prediction = categorical_profile(preds.ravel())
        elif preds.ndim == 1 or (preds.ndim == 2 and preds.shape[1] == 1):
            prediction = numeric_profile(preds.ravel())
    score = numeric_profile(scores) if scores is not None else None
    target_profile: FeatureProfile | None = None
    if target is not None:
        target_profile = column_profile(pd.Series(np.asarray(target).ravel()))
    return ReferenceProfile(len(frame), features, prediction, score, target_profile)
