"""Shipyard's alert rules as Prometheus alerting rules, for teams that alert from Prometheus.

Each rule becomes a PromQL expression over the series ``/metrics`` exports (``monitoring.series`` for the
report's figures, ``serving.metrics`` for requests and latency), so Prometheus scraping any replica fires
the same alerts Shipyard's own evaluator does. Decisions:

- the gauges change once a monitoring window, so "held for N windows" is Prometheus's ``for`` of N-1
  windows (the first breach is already one window's figure);
- a rule on ``stable`` (whatever the endpoint serves now) cannot name a version in PromQL: it watches every
  exported version of the endpoint, aggregated in the direction that breaches first (``max`` for ``>``,
  ``min`` for ``<``); a rule on a version (``fraud:3``) names it;
- a rule whose metric has no series (an unseen *rate*: ``/metrics`` exports the count) or names an alias is
  skipped, with a comment in the file saying why;
- Prometheus alert names are metric names, so a rule name's other characters become ``_`` and the original
  goes in the ``shipyard_rule`` label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from shipyard.alerts.rules import STABLE, AlertRule

_NOT_METRIC = re.compile(r"[^a-zA-Z0-9_:]")


@dataclass(frozen=True, slots=True)
class Series:
    """Where a metric path lives in ``/metrics``: a gauge name and the labels that pick the figure."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()
    per_feature: bool = False
    over_features: str = "max"
    """How a rule without ``--feature`` combines the per-feature series: ``max`` (worst) or ``sum``."""


SERIES: dict[str, Series] = {
    "drift.drifted": Series("shipyard_monitoring_drift_detected"),
    "drift.share": Series("shipyard_monitoring_drifted_features_share"),
    "drift.feature.score": Series("shipyard_monitoring_drift_score", per_feature=True),
    "drift.feature.drifted": Series("shipyard_monitoring_feature_drifted", per_feature=True),
    "prediction_drift.score": Series("shipyard_monitoring_prediction_drift_score"),
    "multivariate.drifted": Series("shipyard_monitoring_multivariate_drifted"),
    "quality.missing_rate": Series("shipyard_monitoring_missing_rate", per_feature=True),
    "quality.out_of_range": Series("shipyard_monitoring_out_of_range", per_feature=True, over_features="sum"),
    "outliers.rate": Series("shipyard_monitoring_outlier_rate"),
    "performance.accuracy": Series("shipyard_monitoring_performance", (("metric", "accuracy"),)),
    "performance.mae": Series("shipyard_monitoring_performance", (("metric", "mae"),)),
    "performance.rmse": Series("shipyard_monitoring_performance", (("metric", "rmse"),)),
    "estimated.accuracy": Series(
        "shipyard_monitoring_estimated_performance", (("metric", "accuracy"), ("method", "cbpe"))
    ),
    "estimated_loss.mae": Series("shipyard_monitoring_estimated_performance", (("metric", "mae"), ("method", "dle"))),
    "estimated_loss.rmse": Series("shipyard_monitoring_estimated_performance", (("metric", "rmse"), ("method", "dle"))),
    "rewards.rate": Series("shipyard_monitoring_reward_rate"),
    "fairness.gap": Series("shipyard_monitoring_fairness_gap", (("metric", "demographic_parity_difference"),)),
}
"""Report figures exported as gauges; the operational figures are computed from the request counters."""

NO_SERIES = {"quality.unseen_rate": "/metrics exports the count of unseen categories, not their rate"}


def _q(text: str) -> str:
    """A quoted string, valid both in PromQL and in YAML (JSON's escapes are a subset of both)."""
    return json.dumps(text)


def _selector(name: str, labels: Sequence[tuple[str, str]]) -> str:
    return name + "{" + ",".join(f"{k}={_q(v)}" for k, v in labels) + "}"


def _version(rule: AlertRule) -> str | None:
    """The ``version`` label a rule names: None for stable; ``fraud:3`` and ``3`` name version ``3``."""
    if rule.version == STABLE:
        return None
    number = rule.version.rpartition(":")[2]
    if not number.isdigit():
        raise ValueError(f"version {rule.version!r} is an alias, which PromQL cannot resolve; name a version")
    return number


def expression(rule: AlertRule, *, window_s: int) -> str:
    """The rule's PromQL condition; ValueError says why a rule has none."""
    if rule.metric in NO_SERIES:
        raise ValueError(f"metric {rule.metric} has no series: {NO_SERIES[rule.metric]}")
    version = _version(rule)
    where = [("endpoint", rule.endpoint)] + ([("version", version)] if version is not None else [])
    by = "endpoint" if version is None else "endpoint, version"
    worst = "min" if rule.op in ("<", "<=") else "max"
    threshold = repr(rule.threshold)  # the shortest text that reads back as the same float
    if rule.metric.startswith("operational."):
        value = _operational(rule.metric, where, by, window_s)
    else:
        series = SERIES.get(rule.metric)
        if series is None:
            raise ValueError(f"metric {rule.metric} has no series in /metrics")
        labels = list(series.labels) + where
        if rule.feature is not None:
            labels.append(("feature", rule.feature))
        selector = _selector(series.name, labels)
        if series.per_feature and rule.feature is None and series.over_features == "sum":
            by_version = f"sum by (endpoint, version) ({selector})"
            value = f"{worst} by ({by}) ({by_version})"
        else:
            value = f"{worst} by ({by}) ({selector})"
    return f"{value} {rule.op} {threshold}"


def _operational(metric: str, where: list[tuple[str, str]], by: str, window_s: int) -> str:
    window = f"[{window_s}s]"
    requests = _selector("shipyard_requests_total", where)
    if metric == "operational.requests":
        return f"sum by ({by}) (increase({requests}{window}))"
    if metric == "operational.error_rate":
        errors = _selector("shipyard_requests_total", where)[:-1] + ',status=~"5.."}'  # answered with a 5xx
        return f"sum by ({by}) (rate({errors}{window})) / sum by ({by}) (rate({requests}{window}))"
    quantile = {"operational.p99_ms": "0.99", "operational.p95_ms": "0.95"}.get(metric)
    if quantile is None:
        raise ValueError(f"metric {metric} has no series in /metrics")
    buckets = _selector("shipyard_request_latency_seconds_bucket", where)
    return f"histogram_quantile({quantile}, sum by (le, {by}) (rate({buckets}{window}))) * 1000"


def alert_name(rule: str) -> str:
    name = _NOT_METRIC.sub("_", rule)
    return f"_{name}" if name[0].isdigit() else name


def prometheus_rules(rules: Sequence[AlertRule], *, window_s: int, group: str = "shipyard") -> str:
    """The rules file (YAML) for ``rules``; rules with no PromQL form are comments saying why."""
    lines = [
        "# Prometheus alerting rules generated by `shipyard alerts export-prometheus` from Shipyard's alert rules,",
        f"# over the series /metrics exports; monitoring windows are {window_s}s.",
        "groups:",
        f"  - name: {_q(group)}",
        "    rules:",
    ]
    written = 0
    for rule in sorted(rules, key=lambda r: r.name):
        try:
            expr = expression(rule, window_s=window_s)
        except ValueError as exc:
            lines.append(f"      # skipped {rule.name}: {' '.join(str(exc).split())}")
            continue
        written += 1
        hold_s = (rule.for_windows - 1) * window_s
        labels = {**rule.labels, "severity": rule.severity, "endpoint": rule.endpoint, "shipyard_rule": rule.name}
        lines += [f"      - alert: {alert_name(rule.name)}", f"        expr: {_q(expr)}"]
        if hold_s > 0:
            lines.append(f"        for: {hold_s}s")
        lines.append("        labels:")
        lines += [f"          {k}: {_q(v)}" for k, v in labels.items()]
        lines += [
            "        annotations:",
            f"          summary: {_q(rule.describe())}",
            f"          value: {_q('{{ $value }}')}",
        ]
    if not written:
        lines[4] = "    rules: []"
    return "\n".join(lines) + "\n"
