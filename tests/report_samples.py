"""Typed monitoring reports shaped like `MonitoringService.report()` output, for the renderer and model tests.

Built from closed-form distributions (no randomness), so every run renders the same report. The full report
has every section a report can hold: drift with an untested feature and the prediction, data quality,
classification performance with calibration, a confusion matrix, per-class figures, the precision-recall curve,
notes and rewards, regression performance, the label-free estimate, fairness, a timeline and unrouted requests.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shipyard.core.signature import OutputKind
from shipyard.monitoring.calibration import CalibrationResult, ReliabilityBin
from shipyard.monitoring.drift_records import FeatureDrift, StatResult, WindowDrift
from shipyard.monitoring.fairness import FairnessMetrics, GroupRates
from shipyard.monitoring.metrics import ClassificationPerformance, RegressionPerformance
from shipyard.monitoring.precision_recall import ClassScores, PrecisionRecallCurve
from shipyard.monitoring.report import (
    CalibrationBasis,
    DataQuality,
    Estimate,
    Fairness,
    FeatureQuality,
    LatencySummary,
    MonitoringReport,
    Operational,
    Performance,
    ReportRange,
    TimelineWindow,
    Unrouted,
    VersionReport,
)
from shipyard.monitoring.rewards import RewardSummary

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WINDOW_S = 300
EDGES = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)


def _normal_proportions(shift: float) -> tuple[float, ...]:
    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((x - shift) / math.sqrt(2)))

    cuts = [-math.inf, *EDGES, math.inf]
    return tuple(round(cdf(b) - cdf(a), 4) for a, b in itertools.pairwise(cuts))


def _bins() -> tuple[str, ...]:
    labels = [f"<= {EDGES[0]:g}"]
    labels += [f"({a:g}, {b:g}]" for a, b in itertools.pairwise(EDGES)]
    return (*labels, f"> {EDGES[-1]:g}")


def numeric_feature(name: str, *, shift: float, score: float, drifted: bool) -> FeatureDrift:
    """A numeric feature decided by PSI, with KS and Wasserstein beside it."""
    ks_p = 1e-6 if drifted else 0.4
    return FeatureDrift(
        feature=name,
        kind="numeric",
        test="psi",
        drifted=drifted,
        rows=1500,
        stats=(
            StatResult("psi", score, 0.2, None, drifted),
            StatResult("ks", round(score / 2, 3), 0.05, ks_p, ks_p < 0.05),
            StatResult("wasserstein", round(abs(shift), 3), 0.1, None, abs(shift) > 0.1),
        ),
        scores={"psi": score, "ks": round(score / 2, 3), "ks_p_value": ks_p, "wasserstein": round(abs(shift), 3)},
        bins=_bins(),
        edges=EDGES,
        reference_proportions=_normal_proportions(0.0),
        live_proportions=_normal_proportions(shift),
        reference_missing_share=0.0,
        live_missing_share=0.0,
    )


def categorical_feature(name: str) -> FeatureDrift:
    """A categorical feature decided by chi-square, not drifted."""
    return FeatureDrift(
        feature=name,
        kind="categorical",
        test="chi2",
        drifted=False,
        rows=1500,
        stats=(StatResult("chi2", 3.1, 0.05, 0.54, False), StatResult("js", 0.01, 0.1, None, False)),
        scores={"chi2": 3.1, "chi2_p_value": 0.54, "js": 0.01},
        bins=("DE", "FR", "NL", "rare"),
        reference_proportions=(0.5, 0.3, 0.15, 0.05),
        live_proportions=(0.48, 0.31, 0.16, 0.05),
        reference_missing_share=0.0,
        live_missing_share=0.0,
    )


def untested_feature(name: str) -> FeatureDrift:
    """A feature with live data but no reference to compare it with: listed, not tested, with the reason."""
    return FeatureDrift(
        feature=name,
        kind="categorical",
        test=None,
        drifted=False,
        rows=1500,
        live_missing_share=0.0,
        note="no reference profile for this feature",
    )


def timeline(windows: int, *, drift_from: int) -> tuple[TimelineWindow, ...]:
    items = []
    for i in range(windows):
        start = START + timedelta(seconds=i * WINDOW_S)
        drifting = i >= drift_from
        items.append(
            TimelineWindow(
                start=start,
                end=start + timedelta(seconds=WINDOW_S),
                requests=90 + (i * 7) % 25,
                error_rate=0.0025,
                latency_p99_ms=7.1,
                drift_max_score=round(
                    0.05 + (0.36 * (i - drift_from + 1) / (windows - drift_from) if drifting else 0), 3
                ),
                drifted_features=("tenure_months", "amount") if drifting else (),
                accuracy=None if i < 2 else round(0.95 - (0.04 if drifting else 0) - 0.002 * (i % 3), 3),
                estimated_accuracy=round(0.94 - (0.03 if drifting else 0), 3),
                reward_rate=None if i % 4 == 3 else round(0.62 - 0.01 * (i % 5), 3),
            )
        )
    return tuple(items)


def _calibration() -> CalibrationResult:
    bins = []
    for i in range(10):
        low = i / 10
        mean_predicted = low + 0.05
        bins.append(
            ReliabilityBin(
                low=low,
                high=low + 0.1,
                count=400 // (i + 1),
                mean_predicted=mean_predicted,
                fraction_positive=round(min(1.0, mean_predicted * 0.9 + 0.01), 3),
            )
        )
    return CalibrationResult("positive_class", 1, 1000, 0.03, tuple(bins))


def _precision_recall_curve() -> PrecisionRecallCurve:
    """A thinned curve of a good model, 21 of its 980 points: recall falls from 1 to 0 as precision rises from
    the share of positives (0.26) to 1."""
    recall = tuple(round(1 - i / 20, 3) for i in range(21))
    precision = (*(round(0.26 + 0.74 * (i / 20) ** 0.5, 3) for i in range(20)), 1.0)
    thresholds = tuple(round(i / 20, 3) for i in range(20))
    return PrecisionRecallCurve(positive=1, precision=precision, recall=recall, thresholds=thresholds, points=980)


def _quality(features: tuple[FeatureDrift, ...]) -> DataQuality:
    return DataQuality(
        rejected_requests=3,
        features=tuple(
            FeatureQuality(
                feature=f.feature,
                missing_rate=0.01 if f.feature == "tenure_months" else 0.0,
                reference_missing_rate=0.0,
                out_of_range=12 if f.feature == "tenure_months" else 0,
                out_of_range_rate=(0.008 if f.feature == "tenure_months" else 0.0) if f.kind == "numeric" else None,
                unseen=4 if f.kind == "categorical" else 0,
                unseen_rate=0.0027 if f.kind == "categorical" else None,
                type_violations=2 if f.feature == "amount" else 0,
            )
            for f in features
        ),
        unknown_features=("colour",),
    )


def full_version(name: str = "fraud:3", *, extra_feature: str | None = None) -> VersionReport:
    """The candidate of a canary: drifted, labelled, calibrated, with fairness and notes explaining gaps."""
    features = [
        numeric_feature("tenure_months", shift=0.9, score=0.41, drifted=True),
        numeric_feature("amount", shift=0.6, score=0.27, drifted=True),
        categorical_feature("country"),
        numeric_feature("age", shift=0.05, score=0.01, drifted=False),
    ]
    if extra_feature is not None:
        features.append(numeric_feature(extra_feature, shift=0.0, score=0.001, drifted=False))
    # The service sorts drifted first; shuffle here so the renderers' own ordering is what is tested.
    shuffled = (features[2], features[0], *features[3:], features[1], untested_feature("device"))
    prediction = FeatureDrift(
        feature="prediction",
        kind="categorical",
        test="js",
        drifted=False,
        rows=1500,
        stats=(StatResult("chi2", 12.0, 0.05, 0.0005, True), StatResult("js", 0.08, 0.1, None, False)),
        scores={"chi2": 12.0, "chi2_p_value": 0.0005, "js": 0.08},
        bins=("0", "1"),
        reference_proportions=(0.9, 0.1),
        live_proportions=(0.85, 0.15),
    )
    classification = ClassificationPerformance(
        n=1000,
        classes=(0, 1),
        average="binary",
        positive=1,
        accuracy=0.93,
        precision=0.9,
        recall=0.88,
        f1=0.89,
        roc_auc=0.97,
        log_loss=0.2,
        calibration=_calibration(),
        confusion_matrix=((700, 40), (30, 230)),
        notes={"precision": "counted as 0 where no row was predicted positive, as scikit-learn does"},
        brier_score=0.061,
        average_precision=0.912,
        per_class=(
            ClassScores(0, 0.959, 0.946, 0.952, 740, 730),
            ClassScores(1, 0.852, 0.885, 0.868, 260, 270),
        ),
        precision_recall_curve=_precision_recall_curve(),
    )
    fairness = FairnessMetrics(
        n=1020,
        positive=1,
        demographic_parity_difference=0.04,
        equalized_odds_difference=0.07,
        true_positive_rate_difference=0.04,
        false_positive_rate_difference=0.07,
        groups=(
            GroupRates("F", 500, 0.3, 120, 380, 0.8, 0.1),
            GroupRates("M", 520, 0.34, 125, 395, 0.84, 0.12),
        ),
        undefined_rates="zero",
        labelled=1000,
        notes={"equalized_odds_difference": "group M has no negatives in two windows"},
    )
    return VersionReport(
        version=name,
        arms=("candidate",),
        operational=Operational(
            requests=1200,
            rows=1500,
            request_rate_per_s=0.33,
            errors={"422": 3, "500": 0},
            error_rate=0.0025,
            latency_ms=LatencySummary(p50=1.2, p95=3.4, p99=7.9, mean=1.5),
            dropped=5,
        ),
        drift=WindowDrift(
            drifted=True,
            drifted_features=("tenure_months", "amount"),
            features=shuffled,
            prediction=prediction,
        ),
        quality=_quality(shuffled),
        performance=Performance(
            labelled=1000,
            kind=OutputKind.CLASSIFICATION,
            classification=classification,
            reward=RewardSummary(400, 0.61, 0.56, 0.66, 0.95, "wilson"),
        ),
        estimated=Estimate(
            method="cbpe",
            accuracy=0.91,
            rows=1500,
            mean_confidence=0.95,
            calibrated=True,
            calibration=CalibrationBasis("holdout", 3000, 20),
            note=None,
            realised_accuracy=0.93,
            difference=-0.02,
        ),
        fairness=Fairness("gender", fairness),
        timeline=timeline(12, drift_from=7),
    )


def stable_version() -> VersionReport:
    """The stable side of the canary: a regression model, no drift, no estimate (no probabilities)."""
    candidate = full_version("fraud:2")
    assert candidate.drift is not None
    undrifted = tuple(replace(f, drifted=False) for f in candidate.drift.features)
    return VersionReport(
        version="fraud:2",
        arms=("stable",),
        operational=candidate.operational,
        drift=WindowDrift(
            drifted=False, drifted_features=(), features=undrifted, prediction=candidate.drift.prediction
        ),
        quality=candidate.quality,
        performance=Performance(
            labelled=800,
            kind=OutputKind.REGRESSION,
            regression=RegressionPerformance(800, 1.2, 1.9, 0.81, 0.137),
        ),
        timeline=candidate.timeline,
    )


def full_report(*, extra_feature: str | None = None) -> MonitoringReport:
    """Two versions in a canary: the candidate has drifted, the stable one is a regression model."""
    return MonitoringReport(
        endpoint="fraud",
        generated_at=datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        window=ReportRange(START, START + timedelta(hours=1), 3600, WINDOW_S),
        unrouted=Unrouted(requests=3, errors={"400": 3}, dropped=0),
        versions=(full_version(extra_feature=extra_feature), stable_version()),
    )


def bare_report() -> MonitoringReport:
    """Every optional section empty: a fresh endpoint, no reference profile, no labels, one quiet window."""
    quiet = TimelineWindow(
        start=START,
        end=START + timedelta(seconds=WINDOW_S),
        requests=0,
        error_rate=None,
        latency_p99_ms=None,
        drift_max_score=None,
        drifted_features=(),
        accuracy=None,
        estimated_accuracy=None,
        reward_rate=None,
    )
    return MonitoringReport(
        endpoint="fresh",
        generated_at=START,
        window=ReportRange(START - timedelta(hours=1), START, 3600, WINDOW_S),
        versions=(
            VersionReport(version="fresh:1"),
            VersionReport(
                version="fresh:0",
                drift=WindowDrift(drifted=False, drifted_features=(), features=(), prediction=None),
                timeline=(quiet,),
            ),
        ),
    )
