"""The monitoring report as Prometheus samples: the feature cap, what it counts as dropped, no NaN ever."""

from __future__ import annotations

from typing import Any

from shipyard.monitoring.series import endpoint_series, version_series


def report(features: int, *, drifted: set[int] = frozenset(), accuracy: float | None = 0.9) -> dict[str, Any]:
    names = [f"x{i}" for i in range(features)]
    return {
        "version": "fraud:3",
        "drift": {
            "drifted": bool(drifted),
            "drift_share": len(drifted) / features,
            "prediction_drifted": False,
            "prediction": {"score": 0.1},
            "features": [
                {"feature": n, "test": "ks", "score": i / 100, "drifted": i in drifted, "severity": i / 10}
                for i, n in enumerate(names)
            ],
        },
        "quality": {"features": [{"feature": n, "missing_rate": 0.0, "out_of_range": 2, "unseen": 0} for n in names]},
        "performance": {"labelled": 10, "kind": "classification", "accuracy": accuracy, "mae": None},
        "outliers": {"rate": float("nan")},
    }


def per_feature(samples: Any) -> set[str]:
    return {dict(s.labels)["feature"] for s in samples if "feature" in dict(s.labels)}


def test_the_cap_keeps_the_drifted_then_most_severe_features_and_counts_what_it_drops() -> None:
    series = version_series("fraud", report(30, drifted={2}), max_features=5)
    assert per_feature(series.samples) == {"x2", "x29", "x28", "x27", "x26"}
    assert series.dropped == 25 * 5  # score, drifted, missing rate, out of range, unseen for each left out


def test_figures_that_could_not_be_computed_are_absent_not_nan() -> None:
    samples = version_series("fraud", report(3, accuracy=None)).samples
    names = {s.name for s in samples}
    assert "shipyard_monitoring_outlier_rate" not in names  # NaN in the report
    assert not [s for s in samples if s.name == "shipyard_monitoring_performance"]
    assert all(s.value == s.value for s in samples)


def test_every_endpoint_says_how_many_series_it_dropped() -> None:
    samples = endpoint_series("fraud", [report(3)], max_features=2)
    dropped = [s for s in samples if s.name == "shipyard_monitoring_series_dropped"]
    assert [(s.labels, s.value) for s in dropped] == [((("endpoint", "fraud"),), 5.0)]
    assert {dict(s.labels).get("version") for s in samples if s is not dropped[0]} >= {"fraud:3"}
