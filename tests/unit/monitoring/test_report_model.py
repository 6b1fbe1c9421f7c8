"""The typed monitoring report: JSON out and back in, and a clear error for JSON that is not a report."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace
from typing import Any

import pytest

from shipyard.errors import InvalidArgumentError, NotFoundError
from shipyard.monitoring.drift_records import StatResult
from shipyard.monitoring.report import MonitoringReport
from tests.report_samples import bare_report, categorical_feature, full_report


def _through_json(report: MonitoringReport) -> tuple[str, MonitoringReport]:
    text = json.dumps(report.to_dict())
    return text, MonitoringReport.from_dict(json.loads(text))


@pytest.mark.parametrize("build", [full_report, bare_report], ids=["every-section", "bare"])
def test_a_report_survives_json_and_back_unchanged(build: Any) -> None:
    report = build()
    text, again = _through_json(report)
    assert again == report
    assert json.dumps(again.to_dict()) == text


def test_the_full_sample_holds_every_section() -> None:
    """Guards the round trip above: it proves little if a section were empty."""
    candidate, stable = full_report().versions
    assert candidate.drift is not None and candidate.drift.prediction is not None
    assert any(f.test is None for f in candidate.drift.features)  # an untested feature, with its note
    assert candidate.performance is not None and candidate.performance.classification is not None
    assert candidate.performance.classification.calibration is not None
    assert candidate.performance.classification.notes and candidate.performance.reward is not None
    assert stable.performance is not None and stable.performance.regression is not None
    assert candidate.estimated is not None and candidate.estimated.calibration is not None
    assert candidate.fairness is not None and candidate.fairness.metrics.notes
    assert candidate.timeline and candidate.quality.features and candidate.quality.unknown_features
    assert full_report().unrouted.requests


def test_an_undefined_p_value_stays_undefined_through_json() -> None:
    """A NaN p-value is written as null; read back, its severity must still be undefined, not a score ratio."""
    feature = categorical_feature("country")
    undefined = replace(feature, stats=(StatResult("chi2", 3.1, 0.05, math.nan, False), *feature.stats[1:]))
    version = full_report().versions[0]
    assert version.drift is not None
    drift = replace(version.drift, features=(undefined,))
    report = replace(full_report(), versions=(replace(version, drift=drift),))
    written = report.to_dict()["versions"][0]["drift"]["features"][0]
    assert written["p_value"] is None and written["severity"] is None
    text, again = _through_json(report)
    assert json.dumps(again.to_dict()) == text


def test_keys_a_newer_release_adds_are_ignored() -> None:
    data = full_report().to_dict()
    data["alerts"] = []
    data["versions"][0]["explanations"] = {"top": ["amount"]}
    assert MonitoringReport.from_dict(data) == full_report()


def _break(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(data)
    target: Any = broken
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return broken


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("endpoint",), KeyError, "report.endpoint is missing"),
        (("generated_at",), "yesterday", "report.generated_at must be an ISO 8601 time"),
        (("window",), "1h", "report.window must be an object, got '1h' (str)"),
        (("versions",), None, "report.versions must be a list, got None"),
        (("versions", 0, "operational", "requests"), "12", "report.versions[0].operational.requests must be a whole"),
        (("versions", 0, "drift", "features", 1, "kind"), KeyError, "report.versions[0].drift.features[1].kind is"),
        (("versions", 0, "drift", "features", 0, "kind"), "ordinal", "must be one of ['numeric', 'categorical']"),
        (("versions", 0, "performance", "kind"), "ranking", "report.versions[0].performance.kind must be one of"),
        (("versions", 1, "performance", "mae"), "low", "report.versions[1].performance.mae must be a number"),
        (("versions", 0, "timeline", 3, "drifted_features"), ["a", 1], "must be a list of text, got 1 (int)"),
        (("versions", 0, "fairness", "groups", 0, "count"), True, "fairness.groups[0].count must be a whole number"),
    ],
)
def test_malformed_json_is_refused_naming_the_field(path: tuple[Any, ...], value: Any, message: str) -> None:
    broken = _break(full_report().to_dict(), path, value)
    with pytest.raises(InvalidArgumentError) as caught:
        MonitoringReport.from_dict(broken)
    assert message in str(caught.value)


def test_something_that_is_not_a_report_at_all_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match=r"report must be an object, got \[\] \(list\)"):
        MonitoringReport.from_dict([])


def test_a_version_is_found_by_its_ref_and_a_missing_one_names_those_there_are() -> None:
    report = full_report()
    assert report.version("fraud:2").arms == ("stable",)
    with pytest.raises(NotFoundError, match=r"no version 'fraud:9'; versions: fraud:3, fraud:2"):
        report.version("fraud:9")
