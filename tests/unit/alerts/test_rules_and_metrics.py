"""Rules are checked at declaration; metric paths resolve on a real report, None with a reason otherwise."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shipyard.alerts.metrics import METRICS, resolve
from shipyard.alerts.rules import parse_rule, rules_from_document
from shipyard.errors import InvalidArgumentError
from tests.report_samples import bare_report, full_report

BASE: dict[str, Any] = {"name": "r", "endpoint": "fraud", "metric": "drift.share", "op": ">", "threshold": 0.3}


def test_a_full_rule_is_read_with_its_windows_labels_and_action() -> None:
    rule = parse_rule(
        {**BASE, "for": "10m", "labels": {"team": "risk"}, "action": "retrain", "confirm": True}, window_s=300
    )
    assert rule.for_windows == 2 and rule.labels == {"team": "risk"} and rule.confirm
    assert rule.group_key == "fraud|stable|"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "drift.sharee"}, "unknown metric 'drift.sharee'; known metrics: drift.drifted"),
        ({"threshold": "high"}, "threshold must be a number, got 'high'"),
        ({"threshold": True}, "threshold must be a number"),
        ({"for": "30s"}, "shorter than one monitoring window (300s)"),
        ({"for": 0}, "at least 1 window"),
        ({"op": "=>"}, "op must be one of"),
        ({"severity": "page"}, "severity must be one of info, warning, critical"),
        ({"action": "reboot"}, "action must be one of rollback, pause, pin_previous, retrain"),
        ({"metric": "drift.feature.score"}, "is per feature: name one with --feature"),
        ({"feature": "amount"}, "is not per feature"),
        ({"confirm": True}, "confirm needs an action"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"name": "bad name"}, "rule name must be"),
    ],
)
def test_bad_rules_are_refused_at_declaration_naming_what_is_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_rule({**BASE, **change}, window_s=300)
    assert message in str(caught.value)


def test_a_file_of_rules_refuses_a_name_declared_twice() -> None:
    assert rules_from_document({"alerts": [BASE]}, window_s=60)[0].source == "file"
    with pytest.raises(InvalidArgumentError, match="declared twice: r"):
        rules_from_document({"alerts": [BASE, BASE]}, window_s=60)


def test_every_path_resolves_on_a_full_report_to_a_finite_number_or_a_reason() -> None:
    for version in (*full_report().versions, *bare_report().versions):
        for path, metric in METRICS.items():
            feature = None
            if metric.feature == "required":
                feature = version.drift.features[0].feature if version.drift and version.drift.features else "x"
            got = resolve(version, path, feature=feature)
            assert (got.value is not None and math.isfinite(got.value)) != (got.reason is not None), path


def test_figures_match_the_report_they_come_from() -> None:
    candidate, stable = full_report().versions
    assert candidate.performance is not None and candidate.drift is not None
    assert resolve(candidate, "performance.accuracy").value == candidate.performance.accuracy
    assert resolve(candidate, "operational.p99_ms").value == candidate.operational.latency_ms.p99
    feature = candidate.drift.features[0]
    assert resolve(candidate, "drift.feature.score", feature=feature.feature).value == feature.score
    assert resolve(candidate, "drift.drifted").value == 1.0
    assert stable.performance is not None and stable.performance.regression is not None
    assert resolve(stable, "performance.mae").value == stable.performance.regression.mae
    missing = resolve(candidate, "drift.feature.score", feature="nope")
    assert missing.value is None and missing.reason is not None and "features:" in missing.reason
