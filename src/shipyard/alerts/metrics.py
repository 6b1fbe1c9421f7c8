"""Metric paths: the one resolver from a documented name to a figure of a version's monitoring report.

Alert rules name what they watch by path (``drift.share``, ``drift.feature.score`` with a feature), so a rule
is checked at declaration (an unknown path is an error naming the known ones) and read the same way by the
evaluator, ``shipyard alerts test`` and the benchmark. A figure the report could not compute resolves to
None with the reason, never to NaN: the evaluator then keeps the rule's state rather than guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shipyard.core.jsonsafe import finite_or_none
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.drift_records import FeatureDrift
from shipyard.monitoring.report import VersionReport


@dataclass(frozen=True, slots=True)
class Resolved:
    """A metric's value on one report; ``value`` None means not computable, and ``reason`` says why."""

    value: float | None
    reason: str | None = None


def _ok(value: float | bool | int | None, missing: str) -> Resolved:
    if isinstance(value, bool):
        return Resolved(1.0 if value else 0.0)
    number = finite_or_none(float(value)) if value is not None else None
    return Resolved(number) if number is not None else Resolved(None, missing)


def _feature_drift(report: VersionReport, feature: str | None) -> FeatureDrift | Resolved:
    if report.drift is None:
        return Resolved(None, "no drift section: the version has no reference profile")
    found = next((f for f in report.drift.features if f.feature == feature), None)
    if found is None:
        known = ", ".join(f.feature for f in report.drift.features) or "none"
        return Resolved(None, f"no drift figures for feature {feature!r}; features: {known}")
    return found


def _drift_drifted(r: VersionReport, feature: str | None) -> Resolved:
    if r.drift is None:
        return Resolved(None, "no drift section: the version has no reference profile")
    return _ok(r.drift.dataset_drifted or r.drift.drifted, "")


def _drift_share(r: VersionReport, feature: str | None) -> Resolved:
    if r.drift is None:
        return Resolved(None, "no drift section: the version has no reference profile")
    return _ok(r.drift.drift_share, "no drift share: no feature could be tested in the window")


def _feature_score(r: VersionReport, feature: str | None) -> Resolved:
    found = _feature_drift(r, feature)
    if isinstance(found, Resolved):
        return found
    return _ok(found.score, f"feature {feature!r} was not tested: {found.note or 'too few rows'}")


def _feature_drifted(r: VersionReport, feature: str | None) -> Resolved:
    found = _feature_drift(r, feature)
    if isinstance(found, Resolved):
        return found
    return _ok(found.drifted if found.test is not None else None, f"feature {feature!r} was not tested")


def _prediction_score(r: VersionReport, feature: str | None) -> Resolved:
    if r.drift is None or r.drift.prediction is None:
        return Resolved(None, "no prediction drift: no reference predictions for this version")
    return _ok(r.drift.prediction.score, r.drift.prediction.note or "prediction drift was not tested")


def _multivariate(r: VersionReport, feature: str | None) -> Resolved:
    if r.drift is None or r.drift.multivariate is None:
        return Resolved(None, "no multivariate drift: the reference has no reconstruction model")
    return _ok(r.drift.multivariate.drifted, "")


def _quality(field: str) -> Callable[[VersionReport, str | None], Resolved]:
    def resolve(r: VersionReport, feature: str | None) -> Resolved:
        features = (
            r.quality.features if feature is None else tuple(f for f in r.quality.features if f.feature == feature)
        )
        if not features:
            return Resolved(None, f"no data-quality figures for {feature or 'any feature'} in the window")
        if field == "out_of_range":
            return Resolved(float(sum(f.out_of_range for f in features)))
        rates = [v for f in features if (v := finite_or_none(getattr(f, field))) is not None]
        return Resolved(max(rates)) if rates else Resolved(None, f"no {field} counted in the window")

    return resolve


def _outliers(r: VersionReport, feature: str | None) -> Resolved:
    if r.outliers is None or not r.outliers.available:
        note = r.outliers.note if r.outliers is not None else None
        return Resolved(None, note or "the version has no outlier model")
    return _ok(r.outliers.rate, "no rows scored for outliers in the window")


def _accuracy(r: VersionReport, feature: str | None) -> Resolved:
    if r.performance is None:
        return Resolved(None, "no labelled feedback in the window")
    return _ok(r.performance.accuracy, "no realised accuracy: not a classifier or no scored labels")


def _regression(field: str) -> Callable[[VersionReport, str | None], Resolved]:
    def resolve(r: VersionReport, feature: str | None) -> Resolved:
        if r.performance is None or r.performance.regression is None:
            return Resolved(None, "no regression figures: not a regressor or no labelled feedback in the window")
        return _ok(getattr(r.performance.regression, field), f"{field} undefined for the window's labels")

    return resolve


def _estimated_accuracy(r: VersionReport, feature: str | None) -> Resolved:
    if r.estimated is None:
        return Resolved(None, "no label-free estimate: the model gives no class probabilities")
    return _ok(r.estimated.accuracy, r.estimated.note or "no estimate for the window")


def _estimated_loss(field: str) -> Callable[[VersionReport, str | None], Resolved]:
    def resolve(r: VersionReport, feature: str | None) -> Resolved:
        if r.estimated_loss is None:
            return Resolved(None, "no label-free loss estimate: the model is not a regressor")
        figure = getattr(r.estimated_loss, field)
        return _ok(figure.estimate, r.estimated_loss.note or "no loss estimate for the window")

    return resolve


def _rewards(r: VersionReport, feature: str | None) -> Resolved:
    if r.performance is None or r.performance.reward is None:
        return Resolved(None, "no rewards recorded in the window")
    return _ok(r.performance.reward.mean, "no reward rate: no rewards recorded")


def _fairness(r: VersionReport, feature: str | None) -> Resolved:
    if r.fairness is None:
        return Resolved(None, "no fairness figures: no sensitive feature or no labelled feedback")
    return _ok(r.fairness.metrics.demographic_parity_difference, "demographic parity undefined for the groups")


def _operational(field: str) -> Callable[[VersionReport, str | None], Resolved]:
    def resolve(r: VersionReport, feature: str | None) -> Resolved:
        op = r.operational
        value: float | None
        if field == "p99_ms":
            value = op.latency_ms.p99
        elif field == "p95_ms":
            value = op.latency_ms.p95
        elif field == "requests":
            value = float(op.requests)
        else:
            value = op.error_rate
        return _ok(value, "no traffic in the window")

    return resolve


@dataclass(frozen=True, slots=True)
class Metric:
    """One documented path: how it reads the report and whether it needs (or allows) ``--feature``."""

    path: str
    description: str
    resolve: Callable[[VersionReport, str | None], Resolved]
    feature: str = "no"
    """``no``: no feature; ``required``: names one; ``optional``: one feature, else the worst over all."""


METRICS: Mapping[str, Metric] = {
    m.path: m
    for m in (
        Metric("drift.drifted", "1 when the window's data drifted (dataset verdict), else 0", _drift_drifted),
        Metric("drift.share", "share of tested features that drifted, in [0, 1]", _drift_share),
        Metric("drift.feature.score", "one feature's drift score (the deciding test's)", _feature_score, "required"),
        Metric("drift.feature.drifted", "1 when one feature drifted, else 0", _feature_drifted, "required"),
        Metric("prediction_drift.score", "drift score of the model's output", _prediction_score),
        Metric("multivariate.drifted", "1 when the PCA reconstruction error drifted, else 0", _multivariate),
        Metric(
            "quality.missing_rate", "missing rate (worst feature, or --feature)", _quality("missing_rate"), "optional"
        ),
        Metric(
            "quality.out_of_range",
            "out-of-range values (all features, or --feature)",
            _quality("out_of_range"),
            "optional",
        ),
        Metric(
            "quality.unseen_rate", "unseen category rate (worst, or --feature)", _quality("unseen_rate"), "optional"
        ),
        Metric("outliers.rate", "share of rows above the outlier threshold", _outliers),
        Metric("performance.accuracy", "realised accuracy from labelled feedback", _accuracy),
        Metric("performance.mae", "realised mean absolute error from labelled feedback", _regression("mae")),
        Metric("performance.rmse", "realised root mean squared error", _regression("rmse")),
        Metric("estimated.accuracy", "accuracy estimated without labels (CBPE)", _estimated_accuracy),
        Metric("estimated_loss.mae", "MAE estimated without labels (DLE)", _estimated_loss("mae")),
        Metric("estimated_loss.rmse", "RMSE estimated without labels (DLE)", _estimated_loss("rmse")),
        Metric("rewards.rate", "mean reward of the window's feedback", _rewards),
        Metric("fairness.gap", "demographic parity difference over the sensitive feature", _fairness),
        Metric("operational.error_rate", "share of requests answered with an error", _operational("error_rate")),
        Metric("operational.p99_ms", "99th percentile latency in milliseconds", _operational("p99_ms")),
        Metric("operational.p95_ms", "95th percentile latency in milliseconds", _operational("p95_ms")),
        Metric("operational.requests", "requests in the window", _operational("requests")),
    )
}


def metric(path: str, *, feature: str | None = None) -> Metric:
    """The metric for ``path``; InvalidArgumentError names the known paths or the feature rule broken."""
    found = METRICS.get(path)
    if found is None:
        raise InvalidArgumentError(f"unknown metric {path!r}; known metrics: {', '.join(METRICS)}")
    if found.feature == "required" and not feature:
        raise InvalidArgumentError(f"metric {path!r} is per feature: name one with --feature")
    if found.feature == "no" and feature:
        raise InvalidArgumentError(f"metric {path!r} is not per feature; drop --feature {feature!r}")
    return found


def resolve(report: VersionReport, path: str, *, feature: str | None = None) -> Resolved:
    """The value of ``path`` on one version's report."""
    return metric(path, feature=feature).resolve(report, feature)
