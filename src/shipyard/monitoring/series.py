"""The monitoring report as Prometheus series: one gauge per figure, labelled by endpoint and version.

Pure: a version's report in, samples out. The serving layer refreshes them in the background from the
stored windows and renders what the last refresh computed. A figure the report could not compute (no
labels yet, too few rows, a version registered without a target) is left out, never exported as NaN.

Cardinality is bounded: per-feature series exist for at most ``max_features`` features of a version,
the ones that drift most (drifted first, then by severity); what the cap leaves out is counted in
``shipyard_monitoring_series_dropped``. Only versions an endpoint serves or rolls out to are exported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_FEATURES = 20
"""Per-feature series are exported for at most this many features of each version."""

ESTIMATED = ("accuracy", "precision", "recall", "f1", "roc_auc")
"""CBPE's label-free classifier metrics; DLE's are ``mae`` and ``rmse``."""

FAIRNESS = ("demographic_parity_difference", "equalized_odds_difference")

HELP: Mapping[str, str] = {
    "shipyard_monitoring_drift_score": "Drift score of a feature's primary test (the test label names it).",
    "shipyard_monitoring_feature_drifted": "1 when the feature drifted in the window, else 0.",
    "shipyard_monitoring_drift_detected": "The window's drift verdict for the version: 1 drifted, 0 not.",
    "shipyard_monitoring_drifted_features_share": "Share of tested features that drifted (0..1).",
    "shipyard_monitoring_prediction_drift_score": "Drift score of the predictions against the reference.",
    "shipyard_monitoring_prediction_drifted": "1 when the predictions drifted, else 0.",
    "shipyard_monitoring_multivariate_drift_score": "Score of the multivariate (PCA reconstruction error) test.",
    "shipyard_monitoring_multivariate_drifted": "1 when the multivariate test flags drift, else 0.",
    "shipyard_monitoring_missing_rate": "Share of rows with the feature missing (0..1).",
    "shipyard_monitoring_out_of_range": "Values outside the range seen in training, in the window.",
    "shipyard_monitoring_unseen": "Categorical values not seen in training, in the window.",
    "shipyard_monitoring_outlier_rate": "Share of scored rows above the outlier threshold (0..1).",
    "shipyard_monitoring_rows": "Rows the version predicted in the window.",
    "shipyard_monitoring_labelled_rows": "Predictions joined to a label from feedback in the window.",
    "shipyard_monitoring_performance": "Realised quality from feedback labels (metric: accuracy, f1, mae, rmse ...).",
    "shipyard_monitoring_estimated_performance": "Label-free estimate (CBPE for classifiers, DLE for regressors).",
    "shipyard_monitoring_reward_rate": "Mean reward from feedback in the window.",
    "shipyard_monitoring_fairness_gap": "Gap between groups of the sensitive feature (metric names which).",
    "shipyard_monitoring_series_dropped": "Series the cardinality cap left out of the last refresh, by endpoint.",
}


@dataclass(frozen=True, slots=True)
class Sample:
    """One exported value: a metric name from ``HELP``, its labels in order, a finite value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class VersionSeries:
    samples: tuple[Sample, ...]
    dropped: int


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


class _Builder:
    def __init__(self, endpoint: str, version: str) -> None:
        self.base = (("endpoint", endpoint), ("version", version))
        self.samples: list[Sample] = []

    def add(self, name: str, value: Any, **labels: str) -> int:
        number = _number(value)
        if number is None:
            return 0
        self.samples.append(Sample(name, self.base + tuple(labels.items()), number))
        return 1


def _ranked(features: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drifted features first, then by severity: the ones worth a series when the cap bites."""

    def key(f: Mapping[str, Any]) -> tuple[int, float]:
        severity = _number(f.get("severity"))
        return (0 if f.get("drifted") else 1, -(severity if severity is not None else -1.0))

    return sorted(features, key=key)


def version_series(endpoint: str, report: Mapping[str, Any], *, max_features: int = MAX_FEATURES) -> VersionSeries:
    """The series of one version's report (``VersionReport.to_dict()``)."""
    out = _Builder(endpoint, str(report["version"]))
    drift = report.get("drift") or {}
    quality_by_feature = {
        str(q["feature"]): q for q in _get(report, "quality", "features") or () if isinstance(q, Mapping)
    }
    drift_by_feature = {str(f["feature"]): f for f in drift.get("features") or () if isinstance(f, Mapping)}
    order = [str(f["feature"]) for f in _ranked(list(drift_by_feature.values()))]
    order += sorted(name for name in quality_by_feature if name not in drift_by_feature)
    kept, dropped_features = order[:max_features], order[max_features:]
    dropped = 0
    for name in kept:
        feature = drift_by_feature.get(name, {})
        out.add("shipyard_monitoring_drift_score", feature.get("score"), feature=name, test=str(feature.get("test")))
        out.add("shipyard_monitoring_feature_drifted", feature.get("drifted"), feature=name)
        quality = quality_by_feature.get(name, {})
        out.add("shipyard_monitoring_missing_rate", quality.get("missing_rate"), feature=name)
        out.add("shipyard_monitoring_out_of_range", quality.get("out_of_range"), feature=name)
        out.add("shipyard_monitoring_unseen", quality.get("unseen"), feature=name)
    for name in dropped_features:  # counted as the series they would have had
        feature, quality = drift_by_feature.get(name, {}), quality_by_feature.get(name, {})
        dropped += sum(_number(v) is not None for v in (feature.get("score"), feature.get("drifted")))
        dropped += sum(_number(quality.get(k)) is not None for k in ("missing_rate", "out_of_range", "unseen"))
    if drift:
        out.add("shipyard_monitoring_drift_detected", drift.get("drifted"))
        out.add("shipyard_monitoring_drifted_features_share", drift.get("drift_share"))
        out.add("shipyard_monitoring_prediction_drift_score", _get(drift, "prediction", "score"))
        out.add("shipyard_monitoring_prediction_drifted", drift.get("prediction_drifted"))
        out.add("shipyard_monitoring_multivariate_drift_score", _get(drift, "multivariate", "error", "score"))
        out.add("shipyard_monitoring_multivariate_drifted", _get(drift, "multivariate", "drifted"))
    out.add("shipyard_monitoring_outlier_rate", _get(report, "outliers", "rate"))
    out.add("shipyard_monitoring_rows", _get(report, "operational", "rows"))
    _performance(out, report)
    return VersionSeries(tuple(out.samples), dropped)


def _performance(out: _Builder, report: Mapping[str, Any]) -> None:
    performance = report.get("performance") or {}
    out.add("shipyard_monitoring_labelled_rows", performance.get("labelled"))
    for metric in ("accuracy", "f1", "roc_auc", "mae", "rmse"):
        out.add("shipyard_monitoring_performance", performance.get(metric), metric=metric)
    out.add("shipyard_monitoring_reward_rate", _get(performance, "reward", "mean"))
    for metric in ESTIMATED:
        value = _get(report, "estimated", "cbpe", "metrics", metric, "value")
        if value is None and metric == "accuracy":
            value = _get(report, "estimated", "accuracy")
        out.add("shipyard_monitoring_estimated_performance", value, metric=metric, method="cbpe")
    for metric in ("mae", "rmse"):
        value = _get(report, "estimated_loss", metric, "estimate")
        out.add("shipyard_monitoring_estimated_performance", value, metric=metric, method="dle")
    fairness = report.get("fairness") or {}
    for metric in FAIRNESS:
        out.add(
            "shipyard_monitoring_fairness_gap",
            fairness.get(metric),
            feature=str(fairness.get("feature")),
            metric=metric,
        )


def endpoint_series(
    endpoint: str, reports: Iterable[Mapping[str, Any]], *, max_features: int = MAX_FEATURES
) -> list[Sample]:
    """Every version's series, and the endpoint's count of series left out by the cap."""
    samples: list[Sample] = []
    dropped = 0
    for report in reports:
        series = version_series(endpoint, report, max_features=max_features)
        samples.extend(series.samples)
        dropped += series.dropped
    samples.append(Sample("shipyard_monitoring_series_dropped", (("endpoint", endpoint),), float(dropped)))
    return samples
