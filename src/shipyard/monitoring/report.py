"""The monitoring report as one typed object: what the HTTP route, the CLI, the renderers and alert rules read.

``MonitoringService.report()`` builds it; ``to_dict()`` is the JSON the route answers and ``monitor --json``
prints (every key in a fixed order, None instead of NaN); ``from_dict()`` rebuilds it from that JSON (a remote
server's answer, a saved file) and names the field that is wrong when it cannot. Sections that need what a
version may lack are None: ``drift`` without a reference profile, ``performance`` and ``fairness`` without
labels (fairness also without a sensitive feature), ``estimated`` without predicted probabilities.

Drift, performance, calibration, rewards and fairness are the monitoring maths' own result records, embedded
as they are; the rest (traffic, data quality, the estimate, the timeline) are records of this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shipyard.core.jsonsafe import finite_or_none
from shipyard.core.signature import OutputKind
from shipyard.errors import NotFoundError
from shipyard.monitoring.cbpe_records import CbpeEstimate
from shipyard.monitoring.correlations import CorrelationChanges
from shipyard.monitoring.drift_records import WindowDrift
from shipyard.monitoring.fairness import FairnessMetrics
from shipyard.monitoring.json_reading import (
    Fields,
    classification_from_dict,
    fairness_from_dict,
    regression_from_dict,
    reward_from_dict,
    window_drift_from_dict,
)
from shipyard.monitoring.label_drift import LabelDrift
from shipyard.monitoring.loss_estimate import LossEstimate
from shipyard.monitoring.metrics import ClassificationPerformance, RegressionPerformance
from shipyard.monitoring.outlier_counts import OutlierReport
from shipyard.monitoring.quality_stats import QUANTILE_METHOD, DuplicateRows, FeatureSummary
from shipyard.monitoring.rewards import RewardSummary


@dataclass(frozen=True, slots=True)
class ReportRange:
    """The range the report merges windows over (``window`` in the JSON, as in the query), and the size of one
    stored window."""

    start: datetime
    end: datetime
    seconds: int
    window_s: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "seconds": self.seconds,
            "window_seconds": self.window_s,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> ReportRange:
        return cls(
            fields.moment("start"), fields.moment("end"), fields.integer("seconds"), fields.integer("window_seconds")
        )


@dataclass(frozen=True, slots=True)
class Unrouted:
    """Requests refused before a version was chosen (a malformed body, an unknown shape): no version counts
    them; ``dropped`` also counts what the recorder's full buffer could not profile."""

    requests: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)
    dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": dict(self.errors), "dropped": self.dropped}

    @classmethod
    def from_fields(cls, fields: Fields) -> Unrouted:
        return cls(fields.integer("requests"), fields.counts("errors"), fields.integer("dropped"))


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency quantiles and mean in milliseconds, from the merged histogram; None without traffic."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"p50": self.p50, "p95": self.p95, "p99": self.p99, "mean": self.mean}

    @classmethod
    def from_fields(cls, fields: Fields) -> LatencySummary:
        return cls(*(fields.optional_number(name) for name in ("p50", "p95", "p99", "mean")))


@dataclass(frozen=True, slots=True)
class Operational:
    """A version's service figures over the range; ``errors`` counts responses by HTTP status (>= 400)."""

    requests: int = 0
    rows: int = 0
    request_rate_per_s: float | None = None
    errors: Mapping[str, int] = field(default_factory=dict)
    error_rate: float | None = None
    latency_ms: LatencySummary = field(default_factory=LatencySummary)
    dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rows": self.rows,
            "request_rate_per_s": self.request_rate_per_s,
            "errors": dict(self.errors),
            "error_rate": self.error_rate,
            "latency_ms": self.latency_ms.to_dict(),
            "dropped": self.dropped,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> Operational:
        return cls(
            requests=fields.integer("requests"),
            rows=fields.integer("rows"),
            request_rate_per_s=fields.optional_number("request_rate_per_s"),
            errors=fields.counts("errors"),
            error_rate=fields.optional_number("error_rate"),
            latency_ms=LatencySummary.from_fields(fields.section("latency_ms")),
            dropped=fields.integer("dropped"),
        )


@dataclass(frozen=True, slots=True)
class FeatureQuality:
    """One feature's data quality; a rate is None where it does not apply (out of range for categories,
    unseen levels for numbers) or nothing was counted."""

    feature: str
    missing_rate: float | None
    reference_missing_rate: float | None
    out_of_range: int
    out_of_range_rate: float | None
    unseen: int
    unseen_rate: float | None
    type_violations: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "missing_rate": self.missing_rate,
            "reference_missing_rate": self.reference_missing_rate,
            "out_of_range": self.out_of_range,
            "out_of_range_rate": self.out_of_range_rate,
            "unseen": self.unseen,
            "unseen_rate": self.unseen_rate,
            "type_violations": self.type_violations,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> FeatureQuality:
        return cls(
            feature=fields.text("feature"),
            missing_rate=fields.optional_number("missing_rate"),
            reference_missing_rate=fields.optional_number("reference_missing_rate"),
            out_of_range=fields.integer("out_of_range"),
            out_of_range_rate=fields.optional_number("out_of_range_rate"),
            unseen=fields.integer("unseen"),
            unseen_rate=fields.optional_number("unseen_rate"),
            type_violations=fields.integer("type_violations"),
        )


@dataclass(frozen=True, slots=True)
class DataQuality:
    """Requests the signature refused (4xx), per-feature quality, and features sent that it does not name."""

    rejected_requests: int = 0
    features: tuple[FeatureQuality, ...] = ()
    unknown_features: tuple[str, ...] = ()
    # Summary statistics live against the reference (quantiles as ``quantile_method`` says), features holding
    # one value, duplicate rows (``duplicates.method`` says how counted) and correlation changes between the
    # tracked numeric features. Reports from before these read back with the defaults.
    summaries: tuple[FeatureSummary, ...] = ()
    constant_features: tuple[str, ...] = ()
    duplicates: DuplicateRows | None = None
    correlations: CorrelationChanges | None = None
    quantile_method: str = QUANTILE_METHOD

    def feature(self, name: str) -> FeatureQuality | None:
        """One feature's figures by name, None when the report has none for it."""
        return next((f for f in self.features if f.feature == name), None)

    def summary(self, name: str) -> FeatureSummary | None:
        """One feature's summary statistics by name, None when the report has none for it."""
        return next((s for s in self.summaries if s.feature == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rejected_requests": self.rejected_requests,
            "features": [f.to_dict() for f in self.features],
            "unknown_features": list(self.unknown_features),
            "summaries": [s.to_dict() for s in self.summaries],
            "quantile_method": self.quantile_method,
            "constant_features": list(self.constant_features),
            "duplicates": self.duplicates.to_dict() if self.duplicates is not None else None,
            "correlations": self.correlations.to_dict() if self.correlations is not None else None,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> DataQuality:
        duplicates = fields.optional_section("duplicates") if fields.has("duplicates") else None
        correlations = fields.optional_section("correlations") if fields.has("correlations") else None
        return cls(
            rejected_requests=fields.integer("rejected_requests"),
            features=tuple(FeatureQuality.from_fields(f) for f in fields.objects("features")),
            unknown_features=fields.texts("unknown_features"),
            summaries=tuple(FeatureSummary.from_fields(s) for s in fields.objects("summaries"))
            if fields.has("summaries")
            else (),
            constant_features=fields.texts("constant_features") if fields.has("constant_features") else (),
            duplicates=DuplicateRows.from_fields(duplicates) if duplicates is not None else None,
            correlations=CorrelationChanges.from_fields(correlations) if correlations is not None else None,
            quantile_method=fields.text("quantile_method") if fields.has("quantile_method") else QUANTILE_METHOD,
        )


@dataclass(frozen=True, slots=True)
class Performance:
    """Figures from labelled feedback: a classifier's or a regressor's (None when no row has both a label and
    a prediction yet) and the mean reward (None without rewards)."""

    labelled: int
    kind: OutputKind
    classification: ClassificationPerformance | None = None
    regression: RegressionPerformance | None = None
    reward: RewardSummary | None = None

    @property
    def accuracy(self) -> float | None:
        """A classifier's realised accuracy as the report writes it (None for a regressor or when undefined)."""
        return finite_or_none(self.classification.accuracy) if self.classification is not None else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"labelled": self.labelled, "kind": self.kind.value}
        if self.classification is not None:
            out.update(self.classification.to_dict())
        if self.regression is not None:
            out.update(self.regression.to_dict())
        out["reward"] = self.reward.to_dict() if self.reward is not None else None
        return out

    @classmethod
    def from_fields(cls, fields: Fields) -> Performance:
        value = fields.choice("kind", tuple(k.value for k in OutputKind))
        kind = OutputKind(value)
        scored = fields.has("n")  # the model's figures are there only once a row had a label and a prediction
        reward = fields.optional_section("reward")
        return cls(
            labelled=fields.integer("labelled"),
            kind=kind,
            classification=classification_from_dict(fields) if scored and kind is OutputKind.CLASSIFICATION else None,
            regression=regression_from_dict(fields) if scored and kind is OutputKind.REGRESSION else None,
            reward=reward_from_dict(reward) if reward is not None else None,
        )


@dataclass(frozen=True, slots=True)
class CalibrationBasis:
    """What the label-free estimate's calibrator was fitted on: which rows (training or holdout), how many,
    in how many confidence bins."""

    data: str
    rows: int
    bins: int

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "rows": self.rows, "bins": self.bins}


@dataclass(frozen=True, slots=True)
class Estimate:
    """Accuracy estimated without labels (CBPE). Without a calibrator it is the model's own mean confidence,
    ``calibrated`` is False and ``note`` says why; ``difference`` is estimate minus realised accuracy.
    ``accuracy`` is the top-label estimate every stored window supports; ``cbpe`` adds precision, recall, F1,
    ROC AUC (and accuracy again, from per-class calibration) with sampling-error bands, where the windows
    carry class-probability histograms (None for windows stored before them)."""

    method: str
    accuracy: float | None
    rows: int
    mean_confidence: float | None
    calibrated: bool
    calibration: CalibrationBasis | None
    note: str | None
    realised_accuracy: float | None
    difference: float | None
    cbpe: CbpeEstimate | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "accuracy": self.accuracy,
            "rows": self.rows,
            "mean_confidence": self.mean_confidence,
            "calibrated": self.calibrated,
            "calibration": self.calibration.to_dict() if self.calibration is not None else None,
            "note": self.note,
            "realised_accuracy": self.realised_accuracy,
            "difference": self.difference,
            "cbpe": self.cbpe.to_dict() if self.cbpe is not None else None,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> Estimate:
        basis = fields.optional_section("calibration")
        cbpe = fields.optional_section("cbpe") if fields.has("cbpe") else None  # absent before CBPE's metrics
        return cls(
            method=fields.text("method"),
            accuracy=fields.optional_number("accuracy"),
            rows=fields.integer("rows"),
            mean_confidence=fields.optional_number("mean_confidence"),
            calibrated=fields.flag("calibrated"),
            calibration=(
                CalibrationBasis(basis.text("data"), basis.integer("rows"), basis.integer("bins"))
                if basis is not None
                else None
            ),
            note=fields.optional_text("note"),
            realised_accuracy=fields.optional_number("realised_accuracy"),
            difference=fields.optional_number("difference"),
            cbpe=CbpeEstimate.from_fields(cbpe) if cbpe is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Fairness:
    """Group fairness over the version's first sensitive feature."""

    feature: str
    metrics: FairnessMetrics

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, **self.metrics.to_dict()}

    @classmethod
    def from_fields(cls, fields: Fields) -> Fairness:
        return cls(fields.text("feature"), fairness_from_dict(fields))


@dataclass(frozen=True, slots=True)
class TimelineWindow:
    """One stored window of a version: what the charts over time draw. ``drift_max_score`` is the worst
    feature's severity (1.0 at its threshold), which compares across tests, unlike raw statistics."""

    start: datetime
    end: datetime
    requests: int
    error_rate: float | None
    latency_p99_ms: float | None
    drift_max_score: float | None
    drifted_features: tuple[str, ...]
    accuracy: float | None
    estimated_accuracy: float | None
    reward_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "requests": self.requests,
            "error_rate": self.error_rate,
            "latency_p99_ms": self.latency_p99_ms,
            "drift_max_score": self.drift_max_score,
            "drifted_features": list(self.drifted_features),
            "accuracy": self.accuracy,
            "estimated_accuracy": self.estimated_accuracy,
            "reward_rate": self.reward_rate,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> TimelineWindow:
        return cls(
            start=fields.moment("start"),
            end=fields.moment("end"),
            requests=fields.integer("requests"),
            error_rate=fields.optional_number("error_rate"),
            latency_p99_ms=fields.optional_number("latency_p99_ms"),
            drift_max_score=fields.optional_number("drift_max_score"),
            drifted_features=fields.texts("drifted_features"),
            accuracy=fields.optional_number("accuracy"),
            estimated_accuracy=fields.optional_number("estimated_accuracy"),
            reward_rate=fields.optional_number("reward_rate"),
        )


@dataclass(frozen=True, slots=True)
class VersionReport:
    """One model version that served in the range (or was asked for): each section None when it cannot be
    measured for this version (see the module docstring)."""

    version: str
    arms: tuple[str, ...] = ()
    operational: Operational = field(default_factory=Operational)
    drift: WindowDrift | None = None
    quality: DataQuality = field(default_factory=DataQuality)
    performance: Performance | None = None
    estimated: Estimate | None = None
    fairness: Fairness | None = None
    timeline: tuple[TimelineWindow, ...] = ()
    label_drift: LabelDrift | None = None
    outliers: OutlierReport | None = None
    """Rows scored against the version's outlier model; None only in reports written before it existed."""
    estimated_loss: LossEstimate | None = None
    """A regressor's MAE and RMSE estimated without labels (DLE); None for other models."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "arms": list(self.arms),
            "operational": self.operational.to_dict(),
            "drift": self.drift.to_dict() if self.drift is not None else None,
            "quality": self.quality.to_dict(),
            "performance": self.performance.to_dict() if self.performance is not None else None,
            "estimated": self.estimated.to_dict() if self.estimated is not None else None,
            "fairness": self.fairness.to_dict() if self.fairness is not None else None,
            "label_drift": self.label_drift.to_dict() if self.label_drift is not None else None,
            "outliers": self.outliers.to_dict() if self.outliers is not None else None,
            "estimated_loss": self.estimated_loss.to_dict() if self.estimated_loss is not None else None,
            "timeline": [w.to_dict() for w in self.timeline],
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> VersionReport:
        drift = fields.optional_section("drift")
        performance = fields.optional_section("performance")
        estimated = fields.optional_section("estimated")
        fairness = fields.optional_section("fairness")
        return cls(
            version=fields.text("version"),
            arms=fields.texts("arms"),
            operational=Operational.from_fields(fields.section("operational")),
            drift=window_drift_from_dict(drift) if drift is not None else None,
            quality=DataQuality.from_fields(fields.section("quality")),
            performance=Performance.from_fields(performance) if performance is not None else None,
            estimated=Estimate.from_fields(estimated) if estimated is not None else None,
            fairness=Fairness.from_fields(fairness) if fairness is not None else None,
            timeline=tuple(TimelineWindow.from_fields(w) for w in fields.objects("timeline")),
            # Absent from reports written before label drift; null when the version has no labels to test.
            label_drift=LabelDrift.from_fields(labels)
            if fields.has("label_drift") and (labels := fields.optional_section("label_drift")) is not None
            else None,
            # Absent from reports written before outlier scoring.
            outliers=OutlierReport.from_fields(section)
            if fields.has("outliers") and (section := fields.optional_section("outliers")) is not None
            else None,
            # Absent from reports written before DLE; null for a model that is not a regressor.
            estimated_loss=LossEstimate.from_fields(loss)
            if fields.has("estimated_loss") and (loss := fields.optional_section("estimated_loss")) is not None
            else None,
        )


@dataclass(frozen=True, slots=True)
class MonitoringReport:
    """An endpoint's monitoring over a range: one entry per version, newest first, and what no version saw."""

    endpoint: str
    generated_at: datetime
    window: ReportRange
    unrouted: Unrouted = field(default_factory=Unrouted)
    versions: tuple[VersionReport, ...] = ()

    def version(self, ref: str) -> VersionReport:
        """One version's entry by its ref (``fraud:3``); the error names the versions the report has."""
        for entry in self.versions:
            if entry.version == ref:
                return entry
        listed = ", ".join(v.version for v in self.versions) or "none"
        raise NotFoundError(f"the report of {self.endpoint!r} has no version {ref!r}; versions: {listed}")

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: what the HTTP route answers and ``shipyard monitor --json`` prints."""
        return {
            "endpoint": self.endpoint,
            "generated_at": self.generated_at.isoformat(),
            "window": self.window.to_dict(),
            "unrouted": self.unrouted.to_dict(),
            "versions": [v.to_dict() for v in self.versions],
        }

    @classmethod
    def from_dict(cls, data: object) -> MonitoringReport:
        """The report from its JSON (``to_dict`` of this or another release); InvalidArgumentError names the
        first field that is missing or of the wrong type. Keys it does not know are ignored."""
        fields = Fields(data, "report")
        return cls(
            endpoint=fields.text("endpoint"),
            generated_at=fields.moment("generated_at"),
            window=ReportRange.from_fields(fields.section("window")),
            unrouted=Unrouted.from_fields(fields.section("unrouted")),
            versions=tuple(VersionReport.from_fields(v) for v in fields.objects("versions")),
        )
