"""Mergeable distribution profiles: what training data (and later, live traffic) looked like.

A reference profile fixes the bins (quantile edges for numbers, levels for categories); live windows
count into the same bins, so two profiles merge by adding counts and drift tests compare counts.
``ProfileBuilder`` does the same chunk by chunk, so profiling a million rows needs one chunk's memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.comoments import CoMoments, choose_features

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.core.reconstruction import ReconstructionReference

# pandas is imported inside the functions that take pandas objects: reading a stored profile (every
# `shipyard models list`, every server start) then costs no pandas import.

DEFAULT_BINS = 10
# New reference profiles bin features this finely: KS then agrees with SciPy on the raw rows to one fine bin's
# mass, Wasserstein to 0.2% for real shifts (2.5% on skewed data at 5,000 rows; see divergence.wasserstein_binned),
# and drift tests that want ~10 bins (PSI, chi-square) regroup them by reference mass.
FEATURE_BINS = 100
MAX_LEVELS = 200
# Live windows name this many of the values their reference never saw (the most frequent); see ProfileBuilder.
UNSEEN_LEVELS = 20
OTHER = "__other__"


@dataclass(frozen=True, slots=True)
class NumericProfile:
    """Counts in bins cut at ``edges`` (outer bins open-ended), plus moments and missing count.

    ``sums`` holds the sum of the values in each bin: with it the Wasserstein distance between two profiles
    is exact up to crossings inside a bin. Profiles stored before it existed have ``None`` and still work.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float | None = None
    max: float | None = None
    sums: tuple[float, ...] | None = None

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def variance(self) -> float:
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    @classmethod
    def empty(cls, edges: tuple[float, ...]) -> NumericProfile:
        return cls(edges, (0,) * (len(edges) + 1), sums=(0.0,) * (len(edges) + 1))

    def merge(self, other: NumericProfile) -> NumericProfile:
        """Combine two windows over the same bins (Chan et al. for the moments)."""
        if self.edges != other.edges:
            raise ValueError("cannot merge numeric profiles with different bin edges")
        n_a, n_b = self.count, other.count
        n = n_a + n_b
        sums = (
            tuple(a + b for a, b in zip(self.sums, other.sums, strict=True))
            if self.sums is not None and other.sums is not None
            else None
        )
        if n == 0:
            return NumericProfile(self.edges, self.counts, self.missing + other.missing, sums=sums)
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
            sums,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "numeric",
            "edges": list(self.edges),
            "counts": list(self.counts),
            "missing": self.missing,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min,
            "max": self.max,
        }
        if self.sums is not None:  # absent rather than null: readers from before sums see the old shape
            out["sums"] = list(self.sums)
        return out


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
            tuple(data["sums"]) if data.get("sums") is not None else None,
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
    # The PCA multivariate drift measures live rows against (shipyard.monitoring.multivariate); None for
    # profiles stored before it, or training data with fewer than two features that vary.
    multivariate: ReconstructionReference | None = None
    # Co-moments of up to ten numeric features (shipyard.monitoring.correlations) and the training rows that
    # repeat an earlier one exactly (data quality's duplicate rate); None for profiles stored before them.
    comoments: CoMoments | None = None
    duplicates: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "features": {name: p.to_dict() for name, p in self.features.items()},
        }
        for key in ("prediction", "score", "target"):
            value = getattr(self, key)
            out[key] = value.to_dict() if value is not None else None
        if self.multivariate is not None:  # absent rather than null: older readers see the shape they know
            out["multivariate"] = self.multivariate.to_dict()
        if self.comoments is not None:
            out["comoments"] = self.comoments.to_dict()
        if self.duplicates is not None:
            out["duplicates"] = self.duplicates
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
            multivariate=_reconstruction(data.get("multivariate")),
            comoments=CoMoments.from_dict(data["comoments"]) if data.get("comoments") else None,
            duplicates=int(data["duplicates"]) if data.get("duplicates") is not None else None,
        )


def _reconstruction(data: Mapping[str, Any] | None) -> ReconstructionReference | None:
    """The stored PCA, imported here because its module builds on this one's profiles."""
    if not data:
        return None
    from shipyard.core.reconstruction import ReconstructionReference

    return ReconstructionReference.from_dict(data)


def quantile_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> tuple[float, ...]:
    """Interior cut points at the training quantiles, deduplicated for discrete or constant data."""
    return _sorted_edges(np.sort(values[np.isfinite(values)]), bins)


def _sorted_edges(ordered: np.ndarray, bins: int) -> tuple[float, ...]:
    """``quantile_edges`` of finite values already sorted: read off by index, as ``np.quantile``'s default
    (linear) method does, without the partition it would redo (100 cuts of 131,072 values: 5 ms to 0.1)."""
    if ordered.size == 0:
        return ()
    position = np.linspace(0, 1, bins + 1)[1:-1] * (ordered.size - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, ordered.size - 1)
    # Finite values further apart than the float range (beyond about ±9e307) make an infinite or NaN cut:
    # NumPy's answer, kept as it was, not something to warn about from a serving worker's thread.
    with np.errstate(over="ignore", invalid="ignore"):
        cuts = ordered[below] + (ordered[above] - ordered[below]) * (position - below)
    return tuple(float(c) for c in np.unique(cuts))


def _binned(ordered: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts and value sums per bin of finite values sorted ascending.

    Sorting once and cutting at the edges is several times faster than a binary search per value (the
    way ``np.histogram`` does it too); a sorted bin is a contiguous run, so one ``reduceat`` sums them all.
    """
    # side='right' counts the values <= each cut, so a value equal to a cut falls in the bin below it.
    bounds = np.concatenate(([0], np.searchsorted(ordered, edges, side="right"), [ordered.size]))
    counts = np.diff(bounds)
    sums = np.zeros(counts.size)
    used = counts > 0
    if used.any():  # reduceat reads an empty run as one value, so only non-empty bins' starts go in
        sums[used] = np.add.reduceat(ordered, bounds[:-1][used])
    return counts, sums


class _NumericAccumulator:
    """A numeric profile under construction: NumPy arrays, so adding a chunk allocates no Python objects.

    Without edges, the first values that arrive fix them (``bins`` quantile cuts), as ``numeric_profile``
    does for its one batch; a chunk with no finite value at all does not, it only counts as missing.
    """

    __slots__ = ("_cuts", "bins", "counts", "edges", "high", "low", "m2", "mean", "missing", "n", "sums")

    def __init__(self, edges: tuple[float, ...] | None, bins: int = DEFAULT_BINS) -> None:
        self.bins = bins
        self.n, self.mean, self.m2, self.missing = 0, 0.0, 0.0, 0
        self.low, self.high = np.inf, -np.inf
        self.edges: tuple[float, ...] | None = None
        if edges is not None:
            self._fix(edges)

    def _fix(self, edges: tuple[float, ...]) -> None:
        self.edges = edges
        self._cuts = np.asarray(edges, dtype=np.float64)
        self.counts = np.zeros(len(edges) + 1, dtype=np.int64)
        self.sums = np.zeros(len(edges) + 1, dtype=np.float64)

    def add(self, array: np.ndarray, scratch: np.ndarray | None = None) -> None:
        """Count float64 values; NaN and infinities are missing.

        The sorted copy goes into ``scratch`` when it is big enough: a fresh megabyte per column and chunk
        cost more in page faults than the copy itself (a fifth of the profiling time at a million rows).
        """
        finite = np.isfinite(array)
        if not finite.all():
            ordered = array[finite]
            self.missing += int(array.size - ordered.size)
        elif scratch is not None and scratch.size >= array.size:
            ordered = scratch[: array.size]
            np.copyto(ordered, array)
        else:
            ordered = array.copy()
        ordered.sort()
        self.add_sorted(ordered)

    def add_sorted(self, ordered: np.ndarray) -> None:
        """Count finite values sorted ascending (``add`` sorts; callers that already did skip it)."""
        if self.edges is None:
            if ordered.size == 0:
                return
            self._fix(_sorted_edges(ordered, self.bins))
        # Finite values near the float limit (hostile input does send 1e308) sum past it: sums and moments
        # become inf or NaN, which is NumPy's answer and what the profile keeps, not something to warn about
        # from a serving worker's thread.
        with np.errstate(over="ignore", invalid="ignore"):
            counts, sums = _binned(ordered, self._cuts)
            self.counts += counts
            self.sums += sums
            n_b = ordered.size
            if n_b == 0:
                return
            mean_b = float(sums.sum()) / n_b
            deviations = ordered - mean_b
            # einsum, not `@`: a BLAS dot starts OpenBLAS threads, which doubled the CPU time of profiling
            # on a busy two-core machine for a 30-microsecond sum.
            m2_b = float(np.einsum("i,i->", deviations, deviations))
        n = self.n + n_b
        delta = mean_b - self.mean  # Chan et al.: exact merge of two windows' moments
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.low, self.high = min(self.low, float(ordered[0])), max(self.high, float(ordered[-1]))

    def profile(self) -> NumericProfile:
        if self.edges is None:
            self._fix(())
        assert self.edges is not None
        counts = tuple(int(c) for c in self.counts)
        sums = tuple(float(v) for v in self.sums)
        if self.n == 0:
            return NumericProfile(self.edges, counts, self.missing, sums=sums)
        return NumericProfile(self.edges, counts, self.missing, self.mean, self.m2, self.low, self.high, sums)


def numeric_profile(values: Any, edges: tuple[float, ...] | None = None, *, bins: int = DEFAULT_BINS) -> NumericProfile:
    """Profile numbers into fixed bins; with no edges, the bins come from these values' quantiles."""
    accumulator = _NumericAccumulator(edges, bins)
    accumulator.add(np.asarray(values, dtype=np.float64).ravel())
    return accumulator.profile()


def _level_counts(values: Any) -> tuple[dict[str, int], int]:
    """Counts per level (as strings) and the missing count; a pandas Categorical is counted by its codes."""
    import pandas as pd

    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        true = int(np.count_nonzero(values))
        return {level: n for level, n in (("False", values.size - true), ("True", true)) if n}, 0
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        # Booleans and integer codes: a sort-based unique, not a hash of a million Python objects.
        levels, tallies = np.unique(values.ravel(), return_counts=True)
        return {str(level): int(n) for level, n in zip(levels.tolist(), tallies.tolist(), strict=True)}, 0
    if isinstance(values, pd.Categorical):
        # Code -1 is missing: shifting by one lets bincount count it in slot 0 without a filtering copy.
        tally = np.bincount(np.asarray(values.codes, dtype=np.int64) + 1, minlength=len(values.categories) + 1)
        seen = np.flatnonzero(tally[1:])
        counts: dict[str, int] = {}
        # One conversion of the used categories: iterating an Arrow-backed index value by value is slow.
        for level, n in zip(values.categories.to_numpy(dtype=object)[seen], tally[1:][seen].tolist(), strict=True):
            key = str(level)
            counts[key] = counts.get(key, 0) + n
        return counts, int(tally[0])
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object).ravel())
    missing = int(series.isna().sum())
    counts = {}
    for level, n in series.value_counts(dropna=True).items():
        key = str(level)  # 1 and "1" are one level, as they are once written to JSON
        counts[key] = counts.get(key, 0) + int(n)
    return counts, missing


class _LevelCounter:
    """A categorical profile under construction; levels outside ``levels`` are counted as ``__other__``.

    With ``unseen_levels``, the most frequent levels outside ``levels`` keep their names instead, so a
    new value that takes over live traffic shows by name; the rest still go to ``__other__``. Between
    chunks only a few times that many candidates are kept (a heavy-hitters sketch), so memory stays bounded.
    """

    __slots__ = ("counts", "levels", "max_levels", "missing", "unseen", "unseen_levels")

    def __init__(self, levels: tuple[str, ...] | None, max_levels: int = MAX_LEVELS, unseen_levels: int = 0) -> None:
        self.levels = None if levels is None else frozenset(levels)
        self.max_levels = max_levels
        self.unseen_levels = unseen_levels
        self.counts: dict[str, int] = {}
        self.unseen: dict[str, int] = {}
        self.missing = 0

    def add(self, values: Any) -> None:
        counts, missing = _level_counts(values)
        self.missing += missing
        if self.levels is None:  # the first values seen fix the levels: the most frequent ones
            ranked = sorted(counts.items(), key=lambda kv: -kv[1])
            self.levels = frozenset(level for level, _ in ranked[: self.max_levels])
        for level, n in counts.items():
            if level in self.levels:
                self.counts[level] = self.counts.get(level, 0) + n
            elif self.unseen_levels:
                self.unseen[level] = self.unseen.get(level, 0) + n
            else:
                self.counts[OTHER] = self.counts.get(OTHER, 0) + n
        if len(self.unseen) > 4 * self.unseen_levels:
            self.unseen = self._named(4 * self.unseen_levels, self.counts)

    def _named(self, keep: int, counts: dict[str, int]) -> dict[str, int]:
        """The ``keep`` most frequent unseen levels; the others' counts are added to ``counts[OTHER]``."""
        ranked = sorted(self.unseen.items(), key=lambda kv: -kv[1])
        rest = sum(n for _, n in ranked[keep:])
        if rest:
            counts[OTHER] = counts.get(OTHER, 0) + rest
        return dict(ranked[:keep])

    def profile(self) -> CategoricalProfile:
        counts = dict(self.counts)
        counts.update(self._named(self.unseen_levels, counts))
        ranked = sorted(counts.items(), key=lambda kv: (kv[0] == OTHER, -kv[1]))
        return CategoricalProfile(dict(ranked), self.missing)


def categorical_profile(
    values: Any, levels: tuple[str, ...] | None = None, *, unseen_levels: int = 0
) -> CategoricalProfile:
    """Count levels as strings; beyond the known (or the most frequent) levels, count ``__other__``.

    ``unseen_levels``: with ``levels`` given, keep this many of the most frequent other levels by name,
    so drift tests can name a new value that floods live traffic (it is counted as a level the reference
    never saw, which a test flags however the reference's rare levels are grouped).
    """
    counter = _LevelCounter(levels, unseen_levels=unseen_levels if levels is not None else 0)
    counter.add(values)
    return counter.profile()


def _is_numeric(column: pd.Series) -> bool:
    """Numbers and datetimes are binned; booleans, categoricals and everything else are counted by level."""
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return False
    return bool(pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype))


def _as_float(column: pd.Series) -> np.ndarray:
    """Numbers as float64 with NaN for missing; datetimes as epoch seconds."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        # Via nanoseconds whatever the column's resolution (pandas 3 defaults to microseconds) or zone (UTC).
        nanoseconds = column.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        return np.where(column.isna().to_numpy(), np.nan, nanoseconds / 1e9)
    floats: np.ndarray = column.to_numpy(dtype=np.float64, na_value=np.nan)  # pandas is untyped here
    return floats


def column_profile(column: pd.Series, *, bins: int = DEFAULT_BINS) -> FeatureProfile:
    """Numbers (and datetimes, as epoch seconds) are binned; everything else is counted by level."""
    if _is_numeric(column):
        return numeric_profile(_as_float(column), bins=bins)
    return categorical_profile(column.to_numpy(dtype=object))


def build_reference_profile(
    frame: pd.DataFrame,
    *,
    predictions: Any | None = None,
    classification: bool = False,
    scores: Any | None = None,
    target: Any | None = None,
    feature_bins: int = FEATURE_BINS,
) -> ReferenceProfile:
    """Profile the training rows, the model's own predictions on them, and the target if given.

    Features get ``feature_bins`` quantile bins (fine, for KS and Wasserstein); predictions keep
    ``DEFAULT_BINS``, since rollout gates count live predictions in exactly those bins.
    """
    import pandas as pd

    features = {str(name): column_profile(frame[name], bins=feature_bins) for name in frame.columns}
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
        # A classifier's target is counted by class whatever its dtype (0/1 labels are classes, not numbers),
        # so label drift compares class shares; a regressor's is binned like a numeric feature.
        values = np.asarray(target).ravel()
        target_profile = (
            categorical_profile(values) if classification else column_profile(pd.Series(values), bins=feature_bins)
        )
    return ReferenceProfile(
        len(frame),
        features,
        prediction,
        score,
        target_profile,
        comoments=reference_comoments(frame),
        duplicates=_duplicates(frame),
    )


def reference_comoments(frame: pd.DataFrame) -> CoMoments | None:
    """The training rows' co-moments over the features ``choose_features`` picks; None with fewer than two."""
    columns = {str(name): frame[name].to_numpy() for name in frame.columns}
    names, means = choose_features(columns)
    if len(names) < 2:
        return None
    return CoMoments.empty(names, means).add(columns)


def _duplicates(frame: pd.DataFrame) -> int | None:
    """Training rows equal to an earlier one (exact, by row hash); None for a frame without columns."""
    from shipyard.core.rowhash import duplicates_within, row_hashes

    if frame.shape[1] == 0:
        return None
    return duplicates_within(row_hashes({str(name): frame[name] for name in frame.columns}))


class ProfileBuilder:
    """Profiles a table chunk by chunk, so memory follows the chunk size, not the row count.

    Against a reference, each of its features is counted in the reference's bins and levels: that is how
    a live window is profiled, and the result merges with other windows and compares with the reference.
    Up to ``unseen_levels`` values the reference never saw keep their names (the most frequent ones), so a
    new value flooding a window is named in its drift report rather than hidden in ``__other__``.
    Any other column (and every column, without a reference) has its bins fixed by the first chunk it
    appears in: ``bins`` quantile edges, or its ``max_levels`` most frequent levels. Later values beyond
    them land in the open outer bins or in ``__other__``, so nothing is dropped, but a first chunk that
    does not look like the rest (the first hour of a time-sorted log) gives uneven bins: shuffle first.
    """

    def __init__(
        self,
        reference: ReferenceProfile | Mapping[str, FeatureProfile] | None = None,
        *,
        bins: int = FEATURE_BINS,
        max_levels: int = MAX_LEVELS,
        unseen_levels: int = UNSEEN_LEVELS,
    ) -> None:
        if bins < 1 or max_levels < 1 or unseen_levels < 0:
            raise ValueError(
                f"bins and max_levels must be >= 1 and unseen_levels >= 0, got bins={bins!r}, "
                f"max_levels={max_levels!r}, unseen_levels={unseen_levels!r}"
            )
        features = reference.features if isinstance(reference, ReferenceProfile) else (reference or {})
        self._reference: dict[str, FeatureProfile] = dict(features)
        self._bins = bins
        self._max_levels = max_levels
        self._unseen_levels = unseen_levels
        self._columns: dict[str, _NumericAccumulator | _LevelCounter] = {}
        self._scratch = np.empty(0)
        self.rows = 0

    def add(self, chunk: pd.DataFrame | Mapping[str, Any]) -> None:
        """Count one chunk of rows: a DataFrame, or columns by name (arrays, Series, Categoricals)."""
        import pandas as pd

        names = [str(c) for c in chunk.columns] if isinstance(chunk, pd.DataFrame) else [str(c) for c in chunk]
        columns = list(chunk.items())
        lengths = set()
        for name, (_, values) in zip(names, columns, strict=True):
            lengths.add(len(values))
            accumulator = self._columns.get(name) or self._start(name, values)
            if isinstance(accumulator, _NumericAccumulator):
                if self._scratch.size < len(values):
                    self._scratch = np.empty(len(values))
                accumulator.add(_float_values(values), self._scratch)
            else:
                accumulator.add(values)
        if len(lengths) > 1:
            raise ValueError(f"chunk columns differ in length: {sorted(lengths)}")
        self.rows += lengths.pop() if lengths else 0

    def _start(self, name: str, values: Any) -> _NumericAccumulator | _LevelCounter:
        import pandas as pd

        accumulator: _NumericAccumulator | _LevelCounter
        known = self._reference.get(name)
        if isinstance(known, NumericProfile):
            accumulator = _NumericAccumulator(known.edges)
        elif isinstance(known, CategoricalProfile):
            levels = tuple(level for level in known.counts if level != OTHER)
            accumulator = _LevelCounter(levels, unseen_levels=self._unseen_levels)
        elif _is_numeric(values if isinstance(values, pd.Series) else pd.Series(values)):
            accumulator = _NumericAccumulator(None, self._bins)
        else:
            accumulator = _LevelCounter(None, self._max_levels)
        self._columns[name] = accumulator
        return accumulator

    def profiles(self) -> dict[str, FeatureProfile]:
        """The profile of every column seen so far, in the order they first appeared."""
        return {name: accumulator.profile() for name, accumulator in self._columns.items()}

    def reference_profile(self) -> ReferenceProfile:
        """The columns seen so far as a reference profile (features only: no predictions or target)."""
        return ReferenceProfile(self.rows, self.profiles())


def _float_values(values: Any) -> np.ndarray:
    """A chunk's column as float64 without a copy when it already is one; text that is not a number is missing."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        return values.ravel()
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    if _is_numeric(series):
        return _as_float(series)
    # A numeric reference column that arrives as text: parse what parses, count the rest as missing.
    parsed: np.ndarray = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return parsed


NumericAccumulator = _NumericAccumulator
"""A numeric profile under construction, for callers that add many batches (live windows)."""
LevelCounter = _LevelCounter
"""A categorical profile under construction, for callers that add many batches (live windows)."""
