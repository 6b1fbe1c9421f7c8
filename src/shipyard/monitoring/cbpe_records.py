"""What the label-free classification estimate (CBPE) reports: each metric with its sampling-error band.

Records only, read back from the report's JSON as strictly as the rest of it; the maths that fills them is
``monitoring.cbpe``. A metric that cannot be estimated carries None and a reason, never NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.core.jsonsafe import finite_or_none, json_value
from shipyard.monitoring.json_reading import Fields

CBPE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
"""The estimated metrics, in the order the report shows them."""
CLASS_METRICS = ("precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True, slots=True)
class MetricEstimate:
    """One estimated metric: the value, one standard error, and the band of ±3 standard errors (clipped to
    [0, 1]) that NannyML draws as its sampling error; ``reason`` says why the value is None."""

    value: float | None
    sampling_error: float | None = None
    lower: float | None = None
    upper: float | None = None
    reason: str | None = None

    @classmethod
    def missing(cls, reason: str) -> MetricEstimate:
        return cls(None, None, None, None, reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": finite_or_none(self.value),
            "sampling_error": finite_or_none(self.sampling_error),
            "lower": finite_or_none(self.lower),
            "upper": finite_or_none(self.upper),
            "reason": self.reason,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> MetricEstimate:
        return cls(
            value=fields.optional_number("value"),
            sampling_error=fields.optional_number("sampling_error"),
            lower=fields.optional_number("lower"),
            upper=fields.optional_number("upper"),
            reason=fields.optional_text("reason"),
        )


@dataclass(frozen=True, slots=True)
class ClassEstimate:
    """One class scored one-vs-rest: ``expected_support`` is how many rows the calibrated probabilities
    expect to be of this class, ``predicted`` how many the model put in it."""

    label: Any
    predicted: int
    expected_support: float
    metrics: Mapping[str, MetricEstimate]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": json_value(self.label),
            "predicted": self.predicted,
            "expected_support": finite_or_none(self.expected_support),
            "metrics": {name: self.metrics[name].to_dict() for name in CLASS_METRICS},
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> ClassEstimate:
        metrics = fields.section("metrics")
        return cls(
            label=fields.scalar("label"),
            predicted=fields.integer("predicted"),
            expected_support=fields.number("expected_support"),
            metrics={name: MetricEstimate.from_fields(metrics.section(name)) for name in CLASS_METRICS},
        )


@dataclass(frozen=True, slots=True)
class CbpeEstimate:
    """Accuracy, precision, recall, F1 and ROC AUC estimated without labels over a window.

    ``average`` is ``binary`` (the metrics are the positive class's, ``positive``) or ``macro`` (the mean
    over classes, as NannyML's multiclass CBPE); ``calibrated`` says whether per-class calibrators fitted on
    labelled rows stood behind the probabilities, ``note`` why not.
    """

    rows: int
    average: str
    positive: Any
    calibrated: bool
    metrics: Mapping[str, MetricEstimate]
    classes: tuple[ClassEstimate, ...]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "average": self.average,
            "positive": json_value(self.positive),
            "calibrated": self.calibrated,
            "metrics": {name: self.metrics[name].to_dict() for name in CBPE_METRICS},
            "classes": [c.to_dict() for c in self.classes],
            "note": self.note,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> CbpeEstimate:
        metrics = fields.section("metrics")
        return cls(
            rows=fields.integer("rows"),
            average=fields.choice("average", ("binary", "macro")),
            positive=fields.scalar("positive"),
            calibrated=fields.flag("calibrated"),
            metrics={name: MetricEstimate.from_fields(metrics.section(name)) for name in CBPE_METRICS},
            classes=tuple(ClassEstimate.from_fields(c) for c in fields.objects("classes")),
            note=fields.optional_text("note"),
        )
