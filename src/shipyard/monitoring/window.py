"""A live window: what one endpoint's version saw over one time bucket, mergeable by adding counts.

Serving workers profile their traffic into ``WindowProfile``s in the reference profile's bins, flush them
to the store, and anything longer than one window (an hour, a day, "since deploy") is the merge of stored
windows: no prediction log is rescanned. Every field is a count, a sum or a fixed-size histogram, so a
window is small and the same size whatever the traffic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.core.comoments import CoMoments
from shipyard.core.histograms import LATENCY_EDGES_MS, LatencyHistogram
from shipyard.core.profile import (
    CategoricalProfile,
    FeatureProfile,
    LevelCounter,
    NumericAccumulator,
    NumericProfile,
    ReferenceProfile,
    profile_from_dict,
)
from shipyard.core.rowhash import duplicates_within, row_hashes
from shipyard.core.signature import FeatureType, OutputKind, Signature
from shipyard.monitoring.calibration import ConfidenceSummary
from shipyard.monitoring.cbpe import ClassProbabilities
from shipyard.monitoring.dle import LossSummary
from shipyard.monitoring.multivariate import reconstruction_errors
from shipyard.monitoring.outlier_counts import OutlierCounts

UNSEEN_LEVELS = 20
"""Live windows name up to this many values the reference never saw (the rest count as ``__other__``), so a
flood of one new value shows as drift and in data quality by name."""


def window_start(at: float, window_s: int) -> float:
    """The start (epoch seconds) of the window holding ``at``: windows are aligned to the epoch."""
    return at - (at % window_s)


def to_datetime(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def _add(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, n in b.items():
        out[key] = out.get(key, 0) + n
    return out


def _merge_profiles(a: Mapping[str, FeatureProfile], b: Mapping[str, FeatureProfile]) -> dict[str, FeatureProfile]:
    out = dict(a)
    for name, profile in b.items():
        mine = out.get(name)
        out[name] = profile if mine is None else _merge_one(mine, profile)
    return out


def _merge_one(a: FeatureProfile, b: FeatureProfile) -> FeatureProfile:
    if isinstance(a, NumericProfile) and isinstance(b, NumericProfile) and a.edges == b.edges:
        return a.merge(b)
    if isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
        return a.merge(b)
    return b  # the version's reference changed bins (cannot happen for one immutable version): keep the newer


@dataclass(frozen=True, slots=True)
class WindowProfile:
    """One endpoint version's traffic over one window: service figures, data profiles and quality counts."""

    requests: int = 0
    rows: int = 0
    statuses: Mapping[str, int] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    features: Mapping[str, FeatureProfile] = field(default_factory=dict)
    prediction: FeatureProfile | None = None
    confidence: ConfidenceSummary = field(default_factory=ConfidenceSummary)
    out_of_range: Mapping[str, int] = field(default_factory=dict)
    type_violations: Mapping[str, int] = field(default_factory=dict)
    dropped: int = 0
    arms: Mapping[str, int] = field(default_factory=dict)
    # The rows' PCA reconstruction errors in the reference's error bins (multivariate drift).
    reconstruction: NumericProfile | None = None
    # Duplicate rows, counted honestly for something mergeable: rows equal to an earlier row of the same
    # background batch (about a second of one worker's traffic), summed over batches, out of
    # ``duplicate_checked`` rows. Duplicates across batches are not seen: a lower bound of the window's.
    duplicates: int = 0
    duplicate_checked: int = 0
    # Sums of products of the reference's tracked numeric features (shipyard.monitoring.correlations).
    comoments: CoMoments | None = None
    # Per-row outlier scores against the version's threshold (shipyard.monitoring.outlier_counts).
    outliers: OutlierCounts = field(default_factory=OutlierCounts)
    # Each class's probability histogram with calibrated sums, for CBPE (shipyard.monitoring.cbpe).
    class_probabilities: ClassProbabilities | None = None
    # A regressor's estimated errors as sums (shipyard.monitoring.dle), for the label-free MAE and RMSE.
    loss: LossSummary = field(default_factory=LossSummary)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if int(status) >= 400)

    def merge(self, other: WindowProfile) -> WindowProfile:
        prediction = self.prediction
        if other.prediction is not None:
            prediction = other.prediction if prediction is None else _merge_one(prediction, other.prediction)
        return WindowProfile(
            requests=self.requests + other.requests,
            rows=self.rows + other.rows,
            statuses=_add(self.statuses, other.statuses),
            latency=self.latency.merge(other.latency),
            features=_merge_profiles(self.features, other.features),
            prediction=prediction,
            confidence=self.confidence.merge(other.confidence),
            out_of_range=_add(self.out_of_range, other.out_of_range),
            type_violations=_add(self.type_violations, other.type_violations),
            dropped=self.dropped + other.dropped,
            arms=_add(self.arms, other.arms),
            reconstruction=_merge_errors(self.reconstruction, other.reconstruction),
            duplicates=self.duplicates + other.duplicates,
            duplicate_checked=self.duplicate_checked + other.duplicate_checked,
            comoments=_merge_comoments(self.comoments, other.comoments),
            outliers=self.outliers.merge(other.outliers),
            class_probabilities=_merge_classes(self.class_probabilities, other.class_probabilities),
            loss=self.loss.merge(other.loss),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rows": self.rows,
            "statuses": dict(self.statuses),
            "latency": {"counts": list(self.latency.counts), "sum_ms": self.latency.sum_ms},
            "features": {name: p.to_dict() for name, p in self.features.items()},
            "prediction": self.prediction.to_dict() if self.prediction is not None else None,
            "confidence": self.confidence.to_dict(),
            "out_of_range": dict(self.out_of_range),
            "type_violations": dict(self.type_violations),
            "dropped": self.dropped,
            "arms": dict(self.arms),
            **({"reconstruction": self.reconstruction.to_dict()} if self.reconstruction is not None else {}),
            **(
                {"duplicates": self.duplicates, "duplicate_checked": self.duplicate_checked}
                if self.duplicate_checked
                else {}
            ),
            **({"comoments": self.comoments.to_dict()} if self.comoments is not None else {}),
            **({"outliers": self.outliers.to_dict()} if self.outliers.scored else {}),
            **({"loss": self.loss.to_dict()} if self.loss.rows or self.loss.unscored else {}),
            **(
                {"class_probabilities": self.class_probabilities.to_dict()}
                if self.class_probabilities is not None
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowProfile:
        latency = data.get("latency") or {}
        prediction = data.get("prediction")
        confidence = data.get("confidence")
        return cls(
            requests=int(data.get("requests", 0)),
            rows=int(data.get("rows", 0)),
            statuses={str(k): int(v) for k, v in (data.get("statuses") or {}).items()},
            latency=LatencyHistogram(tuple(latency["counts"]), float(latency["sum_ms"]))
            if latency
            else LatencyHistogram(),
            features={name: profile_from_dict(p) for name, p in (data.get("features") or {}).items()},
            prediction=profile_from_dict(prediction) if prediction else None,
            confidence=ConfidenceSummary.from_dict(confidence) if confidence else ConfidenceSummary(),
            out_of_range={k: int(v) for k, v in (data.get("out_of_range") or {}).items()},
            type_violations={k: int(v) for k, v in (data.get("type_violations") or {}).items()},
            dropped=int(data.get("dropped", 0)),
            arms={k: int(v) for k, v in (data.get("arms") or {}).items()},
            reconstruction=_errors_from_dict(data.get("reconstruction")),
            duplicates=int(data.get("duplicates", 0)),
            duplicate_checked=int(data.get("duplicate_checked", 0)),
            comoments=CoMoments.from_dict(data["comoments"]) if data.get("comoments") else None,
            outliers=OutlierCounts.from_dict(data.get("outliers")),
            loss=LossSummary.from_dict(data["loss"]) if data.get("loss") else LossSummary(),
            class_probabilities=(
                ClassProbabilities.from_dict(data["class_probabilities"]) if data.get("class_probabilities") else None
            ),
        )


def _merge_classes(a: ClassProbabilities | None, b: ClassProbabilities | None) -> ClassProbabilities | None:
    if a is None or b is None:
        return a if b is None else b
    return a.merge(b) if a.counts.shape == b.counts.shape else b  # one version's classes never change: keep newer


def _merge_errors(a: NumericProfile | None, b: NumericProfile | None) -> NumericProfile | None:
    if a is None or b is None:
        return a if b is None else b
    merged = _merge_one(a, b)
    return merged if isinstance(merged, NumericProfile) else b


def _errors_from_dict(data: Mapping[str, Any] | None) -> NumericProfile | None:
    profile = profile_from_dict(data) if data else None
    return profile if isinstance(profile, NumericProfile) else None


def _merge_comoments(a: CoMoments | None, b: CoMoments | None) -> CoMoments | None:
    if a is None or b is None:
        return a if b is None else b
    if a.features != b.features or a.shift != b.shift:
        return b  # the version's reference changed (cannot happen for one immutable version): keep the newer
    return a.merge(b)


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """One worker's partial window as the store keeps it (the profile as its JSON dict)."""

    endpoint: str
    version: str
    start: datetime
    seconds: int
    worker: str
    profile: Mapping[str, Any]


def merge_all(windows: Sequence[WindowProfile]) -> WindowProfile:
    merged = WindowProfile()
    for window in windows:
        merged = merged.merge(window)
    return merged


@dataclass(frozen=True, slots=True)
class Profiler:
    """How one version's rows are profiled: its reference bins and training ranges, fixed at load time.

    Built once per served version; ``add`` then runs vectorised over a batch of rows (one NumPy call
    or one pandas count per feature), so profiling costs per batch, not per request.
    """

    signature: Signature
    reference: ReferenceProfile | None
    calibrator: ConfidenceCalibrator | None = None

    def add(
        self,
        features: dict[str, Accumulator],
        out_of_range: Counter[str],
        columns: Mapping[str, np.ndarray],
        predictions: np.ndarray,
        prediction: Accumulator | None,
    ) -> Accumulator | None:
        """Count a batch into a live window's accumulators (made on first use); returns the prediction's."""
        reference = self.reference.features if self.reference is not None else {}
        for spec in self.signature.features:
            values = columns.get(spec.name)
            if values is None:
                continue
            ref = reference.get(spec.name)
            accumulator = features.get(spec.name)
            if isinstance(ref, NumericProfile) or (ref is None and spec.type.is_numeric):
                numbers = _as_float(values)
                if accumulator is None:
                    edges = ref.edges if isinstance(ref, NumericProfile) else ()
                    accumulator = features[spec.name] = NumericAccumulator(edges)
                accumulator.add(numbers)
                low, high = _training_range(spec.min, spec.max, ref)
                if low is not None and high is not None:
                    outside = int(np.count_nonzero((numbers < low) | (numbers > high)))
                    if outside:
                        out_of_range[spec.name] += outside
            else:
                if accumulator is None:
                    levels = tuple(ref.counts) if isinstance(ref, CategoricalProfile) else _levels(spec.categories)
                    accumulator = features[spec.name] = LevelCounter(
                        levels, unseen_levels=UNSEEN_LEVELS if levels else 0
                    )
                accumulator.add(_as_levels(values, spec.type))
        return self._add_prediction(predictions, prediction)

    def add_reconstruction(
        self, accumulator: NumericAccumulator | None, columns: Mapping[str, np.ndarray]
    ) -> NumericAccumulator | None:
        """Count the batch's PCA reconstruction errors (multivariate drift) in the reference's error bins."""
        model = self.reference.multivariate if self.reference is not None else None
        if model is None or not columns:
            return accumulator
        if accumulator is None:
            accumulator = NumericAccumulator(model.errors.edges)
        accumulator.add(reconstruction_errors(model, columns))
        return accumulator

    def _add_prediction(self, predictions: np.ndarray, accumulator: Accumulator | None) -> Accumulator | None:
        flat = np.asarray(predictions)
        if flat.ndim > 1 and flat.shape[1:] != (1,):
            return accumulator  # tensor outputs are not profiled
        flat = flat.ravel()
        ref = self.reference.prediction if self.reference is not None else None
        if accumulator is None:
            if self.signature.output.kind is OutputKind.CLASSIFICATION or isinstance(ref, CategoricalProfile):
                levels = (
                    tuple(ref.counts) if isinstance(ref, CategoricalProfile) else _levels(self.signature.output.classes)
                )
                accumulator = LevelCounter(levels)
            else:
                accumulator = NumericAccumulator(ref.edges if isinstance(ref, NumericProfile) else ())
        if isinstance(accumulator, NumericAccumulator):
            accumulator.add(_as_float(flat))
        else:
            accumulator.add(flat)
        return accumulator


def _training_range(
    low: float | None, high: float | None, ref: FeatureProfile | None
) -> tuple[float | None, float | None]:
    """The training data's range when the reference profile has it; else the signature's (from the sample input)."""
    if isinstance(ref, NumericProfile) and ref.min is not None and ref.max is not None:
        return ref.min, ref.max
    return low, high


def _levels(categories: Sequence[Any] | None) -> tuple[str, ...] | None:
    return tuple(str(c) for c in categories) if categories is not None else None


def _as_float(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype(np.float64, copy=False)
    out = np.full(len(array), np.nan)
    for i, value in enumerate(array.tolist()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = value
    return out


def _as_levels(values: np.ndarray, kind: FeatureType) -> np.ndarray:
    """Categories counted as strings; booleans as the reference counts them ("True"/"False")."""
    array = np.asarray(values, dtype=object)
    if kind is FeatureType.BOOLEAN:
        return np.array([None if v is None else str(bool(v)) for v in array.tolist()], dtype=object)
    return array


Accumulator = NumericAccumulator | LevelCounter


class LiveWindow:
    """One window under construction in a serving worker: counts kept in mutable arrays and counters.

    A batch of requests adds to them in place (no immutable profile is built or merged per batch); the
    ``WindowProfile`` is made only when the window is flushed to the store.
    """

    def __init__(self, profiler: Profiler | None) -> None:
        self.profiler = profiler
        self.requests = 0
        self.rows = 0
        self.dropped = 0
        self.statuses: Counter[str] = Counter()
        self.arms: Counter[str] = Counter()
        self.violations: Counter[str] = Counter()
        self.out_of_range: Counter[str] = Counter()
        self.latency = np.zeros(len(LATENCY_EDGES_MS) + 1, dtype=np.int64)
        self.latency_sum_ms = 0.0
        self.confidence = ConfidenceSummary()
        self.features: dict[str, Accumulator] = {}
        self.prediction: Accumulator | None = None
        self.reconstruction: NumericAccumulator | None = None
        self.duplicates = 0
        self.duplicate_checked = 0
        reference = profiler.reference if profiler is not None else None
        self.comoments = reference.comoments.like() if reference is not None and reference.comoments else None
        self.outliers = OutlierCounts()
        self.class_probabilities: ClassProbabilities | None = None
        self.loss = LossSummary()

    def add_requests(
        self,
        statuses: Mapping[str, int],
        latencies_ms: np.ndarray,
        arms: Mapping[str, int],
        violations: Mapping[str, int],
    ) -> None:
        self.requests += sum(statuses.values())
        self.statuses.update(statuses)
        self.arms.update(arms)
        self.violations.update(violations)
        if latencies_ms.size:
            self.latency += np.bincount(
                np.searchsorted(LATENCY_EDGES_MS, latencies_ms, side="left"), minlength=self.latency.size
            )
            self.latency_sum_ms += float(latencies_ms.sum())

    def add_rows(
        self, columns: Mapping[str, np.ndarray], predictions: np.ndarray, probabilities: np.ndarray | None
    ) -> None:
        self.rows += len(predictions)
        if self.profiler is not None:
            self.prediction = self.profiler.add(self.features, self.out_of_range, columns, predictions, self.prediction)
            self.reconstruction = self.profiler.add_reconstruction(self.reconstruction, columns)
            self._add_quality(columns)
        if probabilities is not None:
            self.confidence = self.confidence.merge(ConfidenceSummary.of(probabilities))
            calibrator = self.profiler.calibrator if self.profiler is not None else None
            batch = ClassProbabilities.of(probabilities, calibrator)
            self.class_probabilities = _merge_classes(self.class_probabilities, batch)

    def _add_quality(self, columns: Mapping[str, np.ndarray]) -> None:
        """Duplicates within this batch (see ``WindowProfile.duplicates``) and the tracked co-moments."""
        assert self.profiler is not None
        named = {name: columns[name] for name in self.profiler.signature.names if name in columns}
        if named:
            hashes = row_hashes(named)
            self.duplicates += duplicates_within(hashes)
            self.duplicate_checked += int(hashes.size)
        if self.comoments is not None:
            self.comoments = self.comoments.add(columns)

    def add_outlier_scores(self, scores: np.ndarray, threshold: float) -> None:
        self.outliers = self.outliers.merge(OutlierCounts.of(scores, threshold))

    def add_losses(self, losses: LossSummary) -> None:
        self.loss = self.loss.merge(losses)

    def add_unprofiled_rows(self, rows: int) -> None:
        self.rows += rows

    def snapshot(self) -> WindowProfile:
        return WindowProfile(
            requests=self.requests,
            rows=self.rows,
            statuses=dict(self.statuses),
            latency=LatencyHistogram(tuple(int(c) for c in self.latency), self.latency_sum_ms),
            features={name: accumulator.profile() for name, accumulator in self.features.items()},
            prediction=self.prediction.profile() if self.prediction is not None else None,
            confidence=self.confidence,
            out_of_range=dict(self.out_of_range),
            type_violations=dict(self.violations),
            dropped=self.dropped,
            arms=dict(self.arms),
            reconstruction=self.reconstruction.profile() if self.reconstruction is not None else None,
            duplicates=self.duplicates,
            duplicate_checked=self.duplicate_checked,
            comoments=self.comoments,
            outliers=self.outliers,
            class_probabilities=self.class_probabilities,
            loss=self.loss,
        )
