"""An offline comparison of two datasets (or a version's reference and one dataset), chunk by chunk.

``ComparisonBuilder`` takes the reference's chunks first, then the current data's, and keeps only what the live
report keeps: profiles in the reference's bins, co-moments of the tracked numeric features, a hash per row
for exact duplicate counts (8 bytes a row: the one part that grows with the data), a bounded seeded row
sample per side for the domain classifier, and, when performance is asked for, the target and prediction
columns. ``finish`` judges it with the live report's own functions, so both reports say the same things
the same way. Files, frames and registered versions are the service's business (``services.compare``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.comoments import CoMoments, choose_features
from shipyard.core.profile import ProfileBuilder, ReferenceProfile
from shipyard.core.rowhash import row_hashes
from shipyard.monitoring.drift import window_drift
from shipyard.monitoring.drift_records import FeatureDrift, Kind, WindowDrift
from shipyard.monitoring.offline_records import ComparisonReport, DatasetSide, SchemaChanges, TypeChange
from shipyard.monitoring.offline_scoring import performance_of
from shipyard.monitoring.quality_figures import quality_figures
from shipyard.monitoring.quality_stats import OFFLINE_DUPLICATES_METHOD, DuplicateRows, all_missing_features
from shipyard.monitoring.report import DataQuality
from shipyard.monitoring.thresholds import DriftThresholds

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS = 2_000
"""Rows per side kept (a seeded uniform sample) for the domain classifier: its cost stays bounded (about 6 CPU
seconds for 25 features; 5,000 a side took ten times that for the same verdict)."""


@dataclass(slots=True)
class _Side:
    """What one side's chunks leave behind."""

    name: str
    kinds: Mapping[str, str]
    rows: int = 0
    hashes: list[np.ndarray] = field(default_factory=list)
    sample: Any = None
    sample_keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    target: list[np.ndarray] = field(default_factory=list)
    prediction: list[np.ndarray] = field(default_factory=list)
    comoments: CoMoments | None = None


class ComparisonBuilder:
    """Streams a reference and a current dataset into a ``ComparisonReport``.

    ``kinds`` name each column's kind on that side (``number``, ``boolean``, ``date``, ``text``; the type as
    read in brackets is fine too): columns whose kind differs between the sides are named and not compared.
    With ``reference_profile`` (a registered version's) there are no reference chunks: its bins, co-moments
    and duplicate count stand in for them. ``target`` and ``prediction`` name the columns performance is
    computed from; they are not features.
    """

    def __init__(
        self,
        *,
        reference_name: str,
        reference_kinds: Mapping[str, str],
        reference_profile: ReferenceProfile | None = None,
        target: str | None = None,
        prediction: str | None = None,
        sample_rows: int = SAMPLE_ROWS,
        seed: int = 0,
    ) -> None:
        self.target, self.prediction = target, prediction
        self._special = {c for c in (target, prediction) if c}
        self._profile = reference_profile
        self._reference = _Side(reference_name, dict(reference_kinds))
        self._current: _Side | None = None
        self._sample_rows = sample_rows
        self._rng = np.random.default_rng(seed)
        self._builder = ProfileBuilder(reference_profile) if reference_profile is not None else ProfileBuilder()
        self._targets = ProfileBuilder()
        if reference_profile is not None:
            self._reference.rows = reference_profile.rows
            self._reference.comoments = reference_profile.comoments

    # -- chunks ------------------------------------------------------------------------------------------

    def add_reference(self, chunk: Mapping[str, Any]) -> None:
        """One chunk of reference rows (columns by name); all of them before any current chunk."""
        if self._current is not None or self._profile is not None:
            raise ValueError("reference chunks come first, and not at all against a registered version's profile")
        side = self._reference
        features = self._features(chunk)
        if side.comoments is None and side.rows == 0:
            names, means = choose_features({n: v for n, v in features.items() if self._is_number(n)})
            side.comoments = CoMoments.empty(names, means) if len(names) >= 2 else None
        self._builder.add(features)
        self._add_side(side, chunk, features)

    def start_current(self, name: str, kinds: Mapping[str, str]) -> None:
        """Fix the reference's profile; the current data's chunks follow."""
        reference = self._fixed = self.reference_profile()
        compared = {c: k for c, k in kinds.items() if c in reference.features and self._same_kind(c, kinds)}
        self._compared = set(compared)
        self._live = ProfileBuilder({c: reference.features[c] for c in compared})
        self._current = _Side(name, dict(kinds))
        tracked = reference.comoments
        if tracked is not None:
            # Only the tracked features both sides have (of one kind) can be correlated on both sides.
            subset = tracked.subset([f for f in tracked.features if f in compared])
            shared = subset if len(subset.features) >= 2 else None
            self._fixed = replace(reference, comoments=shared)
            self._current.comoments = shared.like() if shared is not None else None

    def add_current(self, chunk: Mapping[str, Any]) -> None:
        """One chunk of current rows (columns by name)."""
        if self._current is None:
            raise ValueError("call start_current before adding current chunks")
        side = self._current
        features = self._features(chunk)
        self._live.add({c: v for c, v in features.items() if c in self._compared})
        self._add_side(side, chunk, features)

    def _features(self, chunk: Mapping[str, Any]) -> dict[str, Any]:
        return {str(c): v for c, v in chunk.items() if str(c) not in self._special}

    def _add_side(self, side: _Side, chunk: Mapping[str, Any], features: Mapping[str, Any]) -> None:
        rows = len(next(iter(chunk.values()))) if chunk else 0
        side.rows += rows
        if not rows:
            return
        side.hashes.append(row_hashes(chunk))
        if side.comoments is not None:
            side.comoments = side.comoments.add(features)
        if self.target and self.target in chunk:
            side.target.append(np.asarray(chunk[self.target], dtype=object))
        if self.prediction and self.prediction in chunk:
            side.prediction.append(np.asarray(chunk[self.prediction], dtype=object))
        self._sample(side, features, rows)

    def _sample(self, side: _Side, features: Mapping[str, Any], rows: int) -> None:
        """Keep the rows with the smallest random keys seen so far: a uniform sample of fixed size."""
        if self._sample_rows <= 0:
            return
        import pandas as pd

        keys = self._rng.random(rows)
        if side.sample_keys.size >= self._sample_rows:
            cut = np.partition(side.sample_keys, self._sample_rows - 1)[self._sample_rows - 1]
            chosen = np.flatnonzero(keys < cut)
        else:
            chosen = np.arange(rows)
        if not chosen.size:
            return
        taken = pd.DataFrame({c: _take(v, chosen) for c, v in features.items()})
        merged = taken if side.sample is None else pd.concat([side.sample, taken], ignore_index=True)
        all_keys = np.concatenate([side.sample_keys, keys[chosen]])
        if all_keys.size > self._sample_rows:
            keep = np.sort(np.argpartition(all_keys, self._sample_rows - 1)[: self._sample_rows])
            merged, all_keys = merged.iloc[keep].reset_index(drop=True), all_keys[keep]
        side.sample, side.sample_keys = merged, all_keys

    # -- kinds -------------------------------------------------------------------------------------------

    def _is_number(self, column: str) -> bool:
        return _kind_word(self._reference.kinds.get(column, "")) == "number"

    def _same_kind(self, column: str, kinds: Mapping[str, str]) -> bool:
        return not _kinds_differ(self._reference.kinds.get(column, ""), kinds.get(column, ""))

    # -- the verdict -------------------------------------------------------------------------------------

    def reference_profile(self) -> ReferenceProfile:
        """The reference's profile: the registered version's, or the one the reference chunks built."""
        if self._profile is not None:
            return self._profile
        built = self._builder.reference_profile()
        duplicates = _duplicates(self._reference.hashes)
        return replace(built, comoments=self._reference.comoments, duplicates=duplicates)

    def finish(
        self,
        *,
        generated_at: datetime,
        thresholds: DriftThresholds | None = None,
        multivariate: bool = True,
        classification: bool | None = None,
        classes: Sequence[Any] | None = None,
    ) -> ComparisonReport:
        """Judge what was streamed. ``classification`` None infers the task from the two columns."""
        if self._current is None:
            self.start_current("current", {})
        assert self._current is not None
        current = self._current
        reference = self._fixed
        schema = self._schema()
        live = self._live.profiles()
        drift = _with_schema(window_drift(reference, live, thresholds=thresholds), schema, reference)
        names = [c for c in reference.features if c in live] + [c for c in schema.extra]
        duplicates = DuplicateRows(
            rows=current.rows,
            duplicates=_duplicates(current.hashes) or 0,
            reference_rows=reference.rows if reference.duplicates is not None else None,
            reference_duplicates=reference.duplicates,
            method=OFFLINE_DUPLICATES_METHOD,
        )
        figures = quality_figures(live, reference, names, duplicates=duplicates, comoments=current.comoments)
        notes = list(self._notes(reference, live))
        performance, performance_note = performance_of(
            current.target,
            current.prediction,
            target=self.target,
            prediction=self.prediction,
            classification=classification,
            classes=classes,
        )
        domain, domain_note = self._domain_classifier(multivariate)
        return ComparisonReport(
            reference=DatasetSide(self._reference.name, reference.rows, tuple(self._reference.kinds)),
            current=DatasetSide(current.name, current.rows, tuple(current.kinds)),
            generated_at=generated_at,
            schema=schema,
            drift=drift,
            quality=DataQuality(features=(), **figures),
            performance=performance,
            performance_note=performance_note,
            multivariate=domain,
            multivariate_note=domain_note,
            notes=tuple(notes),
        )

    def _schema(self) -> SchemaChanges:
        assert self._current is not None
        ref, cur = self._reference.kinds, self._current.kinds
        if self._profile is not None:
            ref = {c: ref.get(c, "") for c in self._profile.features}
        ref = {c: k for c, k in ref.items() if c not in self._special}
        cur = {c: k for c, k in cur.items() if c not in self._special}
        changed = tuple(TypeChange(c, ref[c], cur[c]) for c in ref if c in cur and _kinds_differ(ref[c], cur[c]))
        return SchemaChanges(
            missing=tuple(c for c in ref if c not in cur),
            extra=tuple(c for c in cur if c not in ref),
            changed_types=changed,
        )

    def _notes(self, reference: ReferenceProfile, live: Mapping[str, Any]) -> list[str]:
        assert self._current is not None
        notes = []
        if self._reference.rows == 0:
            notes.append(f"the reference ({self._reference.name}) has no rows: nothing to compare against")
        if self._current.rows == 0:
            notes.append(f"the current data ({self._current.name}) has no rows: nothing to compare")
        for name in all_missing_features(dict(reference.features)):
            notes.append(f"{name}: every reference value is missing, so it cannot be tested")
        for name in all_missing_features(dict(live)):
            notes.append(f"{name}: every current value is missing, so it cannot be tested")
        if reference.comoments is None:
            notes.append(
                "correlations not compared: fewer than two numeric features that vary in the reference are in both"
            )
        return notes

    def _domain_classifier(self, wanted: bool) -> tuple[Any, str | None]:
        """The multivariate domain-classifier test on the two row samples, or why there is none."""
        assert self._current is not None
        if not wanted:
            return None, "not run (turned off)"
        if self._profile is not None:
            return None, "a registered version keeps a profile, not rows: the domain classifier needs both sides' rows"
        ref, cur = self._reference.sample, self._current.sample
        if ref is None or cur is None:
            return None, "a side has no rows"
        from shipyard.monitoring.multivariate import domain_classifier_drift

        return domain_classifier_drift(ref, cur, max_rows=2 * self._sample_rows), None


def _kind_word(kind: str) -> str:
    """``number (double)`` -> ``number``: kinds compare by their first word."""
    return kind.split(" ", 1)[0]


def _kinds_differ(a: str, b: str) -> bool:
    """Whether two columns' kinds clash; a column of no rows (``unknown``) clashes with nothing."""
    first, second = _kind_word(a), _kind_word(b)
    return first != second and "unknown" not in (first, second)


def _take(values: Any, rows: np.ndarray) -> Any:
    import pandas as pd

    if isinstance(values, pd.Series):
        return values.iloc[rows].reset_index(drop=True)
    if isinstance(values, pd.Categorical):
        return values.take(rows)
    return np.asarray(values)[rows]


def _duplicates(hashes: list[np.ndarray]) -> int | None:
    if not hashes:
        return None
    every = np.concatenate(hashes)
    every.sort()  # sort-based: NumPy's hash-based unique is several times slower on a million uint64
    return int(every.size - 1 - np.count_nonzero(np.diff(every))) if every.size else 0


def _with_schema(drift: WindowDrift, schema: SchemaChanges, reference: ReferenceProfile) -> WindowDrift:
    """The drift table with every reference column that was not compared saying why."""
    why = {c: "missing from the current data" for c in schema.missing}
    for change in schema.changed_types:
        why[change.feature] = (
            f"type changed: {change.reference} in the reference, {change.current} in the current data; not compared"
        )
    why.update({c: "only in the current data: no reference to compare with" for c in schema.extra})
    features = tuple(replace(f, note=why[f.feature]) if f.feature in why else f for f in drift.features)
    listed = {f.feature for f in features}
    extra = tuple(
        FeatureDrift(feature=c, kind=_drift_kind(reference, c), test=None, drifted=False, rows=0, note=note)
        for c, note in why.items()
        if c not in listed
    )
    return replace(drift, features=features + extra)


def _drift_kind(reference: ReferenceProfile, column: str) -> Kind:
    from shipyard.core.profile import NumericProfile

    return "numeric" if isinstance(reference.features.get(column), NumericProfile) else "categorical"


def frame_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Each column's kind as ``ComparisonBuilder`` takes it, from a DataFrame's dtypes."""
    import pandas as pd

    kinds = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            word = "boolean"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            word = "date"
        elif pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
            word = "number"
        else:
            word = "text"
        kinds[str(name)] = f"{word} ({dtype})"
    return kinds
