"""Monitoring reports shaped like `MonitoringService.report()` output, for the renderer tests.

Built from closed-form distributions (no randomness), so every run renders the same report.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WINDOW_S = 300
EDGES = [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]


def _normal_proportions(shift: float) -> list[float]:
    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((x - shift) / math.sqrt(2)))

    cuts = [-math.inf, *EDGES, math.inf]
    return [round(cdf(b) - cdf(a), 4) for a, b in itertools.pairwise(cuts)]


def _bins() -> list[str]:
    labels = [f"<= {EDGES[0]:g}"]
    labels += [f"({a:g}, {b:g}]" for a, b in itertools.pairwise(EDGES)]
    return [*labels, f"> {EDGES[-1]:g}"]


def numeric_feature(name: str, *, shift: float, score: float, drifted: bool) -> dict[str, Any]:
    return {
        "feature": name,
        "kind": "numeric",
        "test": "psi",
        "score": score,
        "threshold": 0.2,
        "drifted": drifted,
        "p_value": None,
        "scores": {"psi": score, "ks": round(score / 2, 3), "wasserstein": round(abs(shift), 3)},
        "rows": 1500,
        "reference": {"bins": _bins(), "proportions": _normal_proportions(0.0)},
        "live": {"proportions": _normal_proportions(shift)},
        "note": None,
    }


def categorical_feature(name: str) -> dict[str, Any]:
    return {
        "feature": name,
        "kind": "categorical",
        "test": "chi2",
        "score": 3.1,
        "threshold": 0.05,
        "drifted": False,
        "p_value": 0.54,
        "scores": {"chi2": 3.1, "js": 0.01},
        "rows": 1500,
        "reference": {"bins": ["DE", "FR", "NL", "rare"], "proportions": [0.5, 0.3, 0.15, 0.05]},
        "live": {"proportions": [0.48, 0.31, 0.16, 0.05]},
        "note": None,
    }


def _timeline(windows: int, *, drift_from: int) -> list[dict[str, Any]]:
    items = []
    for i in range(windows):
        start = START + timedelta(seconds=i * WINDOW_S)
        drifting = i >= drift_from
        items.append(
            {
                "start": start.isoformat(),
                "end": (start + timedelta(seconds=WINDOW_S)).isoformat(),
                "requests": 90 + (i * 7) % 25,
                "error_rate": 0.0025,
                "latency_p99_ms": 7.1,
                "drift_max_score": round(
                    0.05 + (0.36 * (i - drift_from + 1) / (windows - drift_from) if drifting else 0), 3
                ),
                "drifted_features": ["tenure_months", "amount"] if drifting else [],
                "accuracy": None if i < 2 else round(0.95 - (0.04 if drifting else 0) - 0.002 * (i % 3), 3),
                "estimated_accuracy": round(0.94 - (0.03 if drifting else 0), 3),
                "reward_rate": None if i % 4 == 3 else round(0.62 - 0.01 * (i % 5), 3),
            }
        )
    return items


def full_version(name: str = "fraud:3", *, extra_feature: str | None = None) -> dict[str, Any]:
    features = [
        numeric_feature("tenure_months", shift=0.9, score=0.41, drifted=True),
        numeric_feature("amount", shift=0.6, score=0.27, drifted=True),
        categorical_feature("country"),
        numeric_feature("age", shift=0.05, score=0.01, drifted=False),
    ]
    if extra_feature is not None:
        features.append(numeric_feature(extra_feature, shift=0.0, score=0.001, drifted=False))
    # The service sorts drifted first; shuffle here so the renderers' own ordering is what is tested.
    features = [features[2], features[0], *features[3:], features[1]]
    prediction = numeric_feature("prediction", shift=0.3, score=0.08, drifted=False)
    prediction["reference"] = {"bins": ["0", "1"], "proportions": [0.9, 0.1]}
    prediction["live"] = {"proportions": [0.85, 0.15]}
    curve = []
    for i in range(10):
        low = i / 10
        mean_predicted = low + 0.05
        curve.append(
            {
                "low": low,
                "high": low + 0.1,
                "count": 400 // (i + 1),
                "mean_predicted": mean_predicted,
                "fraction_positive": round(min(1.0, mean_predicted * 0.9 + 0.01), 3),
            }
        )
    return {
        "version": name,
        "arms": ["candidate"],
        "operational": {
            "requests": 1200,
            "rows": 1500,
            "request_rate_per_s": 0.33,
            "errors": {"422": 3, "500": 0},
            "error_rate": 0.0025,
            "latency_ms": {"p50": 1.2, "p95": 3.4, "p99": 7.9, "mean": 1.5},
            "dropped": 5,
        },
        "drift": {
            "drifted": True,
            "drifted_features": ["tenure_months", "amount"],
            "features": features,
            "prediction": prediction,
        },
        "quality": {
            "rejected_requests": 3,
            "features": [
                {
                    "feature": f["feature"],
                    "missing_rate": 0.01 if f["feature"] == "tenure_months" else 0.0,
                    "reference_missing_rate": 0.0,
                    "out_of_range": 12 if f["feature"] == "tenure_months" else 0,
                    "out_of_range_rate": 0.008 if f["feature"] == "tenure_months" else 0.0,
                    "unseen": 4 if f["kind"] == "categorical" else 0,
                    "unseen_rate": 0.0027 if f["kind"] == "categorical" else 0.0,
                    "type_violations": 2 if f["feature"] == "amount" else 0,
                }
                for f in features
            ],
            "unknown_features": ["colour"],
        },
        "performance": {
            "labelled": 1000,
            "kind": "classification",
            "accuracy": 0.93,
            "precision": 0.9,
            "recall": 0.88,
            "f1": 0.89,
            "roc_auc": 0.97,
            "log_loss": 0.2,
            "average": "binary",
            "calibration": {"ece": 0.03, "method": "positive-class probability", "curve": curve},
            "reward": {"n": 400, "mean": 0.61, "ci_low": 0.56, "ci_high": 0.66},
        },
        "estimated": {"method": "cbpe", "accuracy": 0.91, "realised_accuracy": 0.93, "difference": -0.02},
        "fairness": {
            "feature": "gender",
            "positive": 1,
            "demographic_parity_difference": 0.04,
            "equalized_odds_difference": 0.07,
            "groups": [
                {"group": "F", "count": 500, "selection_rate": 0.3, "tpr": 0.8, "fpr": 0.1},
                {"group": "M", "count": 520, "selection_rate": 0.34, "tpr": 0.84, "fpr": 0.12},
            ],
        },
        "timeline": _timeline(12, drift_from=7),
    }


def full_report(*, extra_feature: str | None = None) -> dict[str, Any]:
    """Two versions in a canary: the candidate has drifted, the stable one is a regression model."""
    stable = full_version("fraud:2")
    stable["arms"] = ["stable"]
    stable["drift"]["drifted"] = False
    stable["drift"]["drifted_features"] = []
    for feature in stable["drift"]["features"]:
        feature["drifted"] = False
    stable["performance"] = {
        "labelled": 800,
        "kind": "regression",
        "mae": 1.2,
        "rmse": 1.9,
        "r2": 0.81,
        "bias": 0.1,
        "reward": None,
    }
    stable["estimated"] = None
    stable["fairness"] = None
    return {
        "endpoint": "fraud",
        "generated_at": "2026-11-21T10:00:00+00:00",
        "window": {
            "start": START.isoformat(),
            "end": (START + timedelta(hours=1)).isoformat(),
            "seconds": 3600,
            "window_seconds": WINDOW_S,
        },
        "unrouted": {"requests": 3, "errors": {"400": 3}, "dropped": 0},
        "versions": [full_version(extra_feature=extra_feature), stable],
    }


def bare_report() -> dict[str, Any]:
    """A report with every section null or empty: a fresh endpoint, no reference profile, no labels."""
    return {
        "endpoint": "fresh",
        "generated_at": None,
        "window": None,
        "versions": [
            {
                "version": "fresh:1",
                "arms": [],
                "operational": None,
                "drift": None,
                "quality": None,
                "performance": None,
                "estimated": None,
                "fairness": None,
                "timeline": [],
            },
            {
                "version": "fresh:0",
                "operational": {"requests": 0, "errors": {}, "latency_ms": {"p50": None}},
                "drift": {"drifted": False, "drifted_features": [], "features": [], "prediction": None},
                "quality": {"rejected_requests": 0, "features": []},
                "performance": {"labelled": 0, "calibration": {"ece": None, "curve": []}, "reward": None},
                "timeline": [
                    {
                        "start": "2026-11-21T09:00:00+00:00",
                        "end": "2026-11-21T09:05:00+00:00",
                        "requests": 0,
                        "drift_max_score": None,
                        "drifted_features": None,
                        "accuracy": None,
                        "estimated_accuracy": None,
                        "reward_rate": None,
                    }
                ],
            },
        ],
    }


def service_style_report() -> dict[str, Any]:
    """The spelling `MonitoringService` uses where it differs from the spec, plus its extra fields.

    Calibration bins under "bins", group rates as "true_positive_rate", regression bias as
    "mean_error", notes explaining missing figures, a confusion matrix, an untested feature.
    """
    report = full_report()
    candidate, stable = report["versions"]
    calibration = candidate["performance"]["calibration"]
    calibration["bins"] = calibration.pop("curve")
    calibration["method"] = "top_label"
    candidate["performance"]["roc_auc"] = None
    candidate["performance"]["notes"] = {"roc_auc": "ROC AUC needs rows of the positive class and of others"}
    candidate["performance"]["confusion_matrix"] = {"labels": ["no", "yes"], "matrix": [[700, 40], [30, 230]]}
    for group in candidate["fairness"]["groups"]:
        group["true_positive_rate"] = group.pop("tpr")
        group["false_positive_rate"] = group.pop("fpr")
    candidate["fairness"]["notes"] = {"equalized_odds_difference": "group M has no negatives"}
    untested = categorical_feature("device")
    untested.update(test=None, score=None, threshold=None, p_value=None, drifted=False)
    untested["note"] = "no reference profile for this feature"
    candidate["drift"]["features"].append(untested)
    candidate["drift"]["skipped"] = ["device"]
    stable["performance"].pop("bias")
    stable["performance"]["mean_error"] = 0.137
    return report
