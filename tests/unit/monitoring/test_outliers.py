"""Per-row outlier scores: about 0.1% of rows like the training rows flagged, far rows and unseen levels always.

Tolerances: the threshold is the training scores' 99.9% quantile, so on the training rows themselves exactly
0.1% lie above it (ties aside); on fresh rows from the same distribution the share is a binomial count around
0.1% whose spread is what the bounds allow (20,000 rows: mean 20 rows, sd ~4.5; the bounds are ~3 sd).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.core.inference import infer_features
from shipyard.core.outlier_model import OutlierModel
from shipyard.core.signature import OutputKind, OutputSpec, Signature
from shipyard.monitoring.outlier_counts import RATIO_EDGES, OutlierCounts, OutlierReport
from shipyard.monitoring.outliers import OutlierScorer
from shipyard.services.outliers import fit_for_registration, load_forest

LEVELS = np.array(["a", "b", "c"], dtype=object)


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "x0": x0,
            "x1": 0.8 * x0 + 0.6 * rng.normal(size=rows),  # correlated: a row breaking it is unusual
            "x2": rng.exponential(size=rows),
            "group": rng.choice(LEVELS, size=rows, p=[0.5, 0.3, 0.2]),
        }
    )


def _signature(frame: pd.DataFrame) -> Signature:
    return Signature(infer_features(frame), OutputSpec(OutputKind.REGRESSION, "float64"))


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy() for name in frame.columns}


def _fit(frame: pd.DataFrame, method: str = "mahalanobis") -> OutlierScorer:
    model = fit_for_registration(frame, _signature(frame), method=method)
    assert model is not None
    restored = OutlierModel.from_dict(model.to_dict())  # what the store keeps is what serves
    assert restored == model
    return OutlierScorer(restored, load_forest(restored) if method == "isolation_forest" else None)


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return _frame(20_000, seed=1)


@pytest.fixture(scope="module")
def scorer(train: pd.DataFrame) -> OutlierScorer:
    return _fit(train)


def test_training_rows_are_outliers_about_one_in_a_thousand(train: pd.DataFrame, scorer: OutlierScorer) -> None:
    scores = scorer.score(_columns(train), len(train))
    assert np.mean(scores > scorer.threshold) == pytest.approx(0.001, abs=0.0002)
    fresh = _frame(20_000, seed=2)
    above = int(np.sum(scorer.score(_columns(fresh), len(fresh)) > scorer.threshold))
    assert 6 <= above <= 40


def test_rows_far_outside_the_training_data_are_flagged_and_explained(scorer: OutlierScorer) -> None:
    far = pd.DataFrame({"x0": [8.0, 0.0], "x1": [0.0, 0.0], "x2": [1.0, 40.0], "group": ["a", "b"]})
    explained = scorer.explain(_columns(far), 2)
    assert all(row.outlier for row in explained)
    assert explained[0].contributions[0].feature == "x0" and explained[0].contributions[0].deviation > 5
    assert explained[1].contributions[0].feature == "x2"
    assert explained[0].to_dict()["threshold"] == scorer.threshold


def test_a_row_breaking_a_correlation_is_flagged_though_each_value_is_ordinary(scorer: OutlierScorer) -> None:
    # x0 = 2.5 and x1 = -2.5 each sit inside the training range, but x1 follows x0 with correlation 0.8
    broken = pd.DataFrame({"x0": [2.5, 2.5], "x1": [-2.5, 2.0], "x2": [1.0, 1.0], "group": ["a", "a"]})
    scores = scorer.score(_columns(broken), 2)
    assert scores[0] > scorer.threshold > scores[1]


def test_a_category_never_seen_in_training_is_flagged(scorer: OutlierScorer) -> None:
    rows = pd.DataFrame({"x0": [0.0, 0.0], "x1": [0.0, 0.0], "x2": [1.0, 1.0], "group": ["zebra", None]})
    explained = scorer.explain(_columns(rows), 2)
    assert explained[0].outlier
    assert explained[0].contributions[0].to_dict() == {"feature": "group", "rare_level": "zebra"}
    assert not explained[1].outlier  # a missing value is no evidence either way


def test_constant_and_collinear_columns_fit_and_score_without_error() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=5000)
    frame = pd.DataFrame({"x": x, "twice": 2 * x, "constant": np.full(5000, 7.0), "empty": np.full(5000, np.nan)})
    scorer = _fit(frame)
    scores = scorer.score(_columns(frame), len(frame))
    assert np.isfinite(scores).all() and np.isfinite(scorer.threshold)
    assert np.mean(scores > scorer.threshold) <= 0.0012
    moved = pd.DataFrame({"x": [0.5, 0.5, 0.5], "twice": [1.0, 1.0, -1.0], "constant": [7.0, 9.0, 7.0], "empty": 0.0})
    verdicts = scorer.score(_columns(moved), 3) > scorer.threshold
    assert verdicts.tolist() == [False, True, True]  # the constant moved; the collinearity broke


def test_missing_and_unreadable_values_score_as_the_training_mean(scorer: OutlierScorer) -> None:
    rows = {"x0": np.array([None, "text"], dtype=object), "x1": np.array([np.nan, 0.0])}
    scores = scorer.score(rows, 2)  # x2 and group absent altogether
    assert np.isfinite(scores).all() and (scores <= scorer.threshold).all()


def test_isolation_forest_flags_far_rows_and_about_one_in_a_thousand_training_rows(train: pd.DataFrame) -> None:
    scorer = _fit(train[:5000], method="isolation_forest")
    assert scorer.model.method == "isolation_forest" and scorer.model.forest
    scores = scorer.score(_columns(train[:5000]), 5000)
    assert np.mean(scores > scorer.threshold) == pytest.approx(0.001, abs=0.0004)
    far = pd.DataFrame({"x0": [9.0], "x1": [-9.0], "x2": [30.0], "group": ["zebra"]})
    row = scorer.explain(_columns(far), 1)[0]
    assert row.outlier and 0.0 < row.score < 1.0
    assert {c.feature for c in row.contributions} <= {"x0", "x1", "x2", "group"}


def test_a_stored_model_that_is_not_an_isolation_forest_is_refused(train: pd.DataFrame) -> None:
    model = fit_for_registration(train[:500], _signature(train), method="isolation_forest")
    assert model is not None
    broken = OutlierModel.from_dict({**model.to_dict(), "forest": "not base64!"})
    with pytest.raises(Exception, match="base64"):
        load_forest(broken)


def test_all_categorical_training_data_scores_unseen_levels_only() -> None:
    frame = pd.DataFrame({"colour": np.array(["red", "blue"] * 1000, dtype=object)})
    scorer = _fit(frame)
    rows = {"colour": np.array(["red", "green"], dtype=object)}
    assert (scorer.score(rows, 2) > scorer.threshold).tolist() == [False, True]


def test_window_counts_merge_by_adding_and_read_back_from_json() -> None:
    a = OutlierCounts.of(np.array([0.1, 0.95, 1.0, 1.01, 30.0, np.nan]), 1.0)
    assert (a.scored, a.above) == (5, 2)
    assert sum(a.histogram) == 5 and len(a.histogram) == len(RATIO_EDGES) + 1
    b = OutlierCounts.of(np.array([2.0]), 1.0)
    merged = a.merge(b)
    assert (merged.scored, merged.above) == (6, 3)
    assert OutlierCounts.from_dict(merged.to_dict()) == merged
    assert OutlierCounts.from_dict(None) == OutlierCounts()  # windows stored before scoring existed


def test_report_says_why_scoring_is_unavailable_and_gives_no_rate() -> None:
    report = OutlierReport.of(None, OutlierCounts(), unavailable="unavailable: registered without training data")
    data = report.to_dict()
    assert data["available"] is False and data["rate"] is None and "training data" in data["note"]


def test_registration_options_refuse_an_unknown_method_and_a_forest_without_training_data() -> None:
    from shipyard.errors import InvalidArgumentError
    from shipyard.services.registration import RegistrationOptions

    assert RegistrationOptions(name="m").outlier_model == "mahalanobis"
    with pytest.raises(InvalidArgumentError, match="outlier_model must be one of 'mahalanobis', 'isolation_forest'"):
        RegistrationOptions(name="m", outlier_model="lof")
    with pytest.raises(InvalidArgumentError, match="needs training_data"):
        RegistrationOptions(name="m", outlier_model="isolation_forest")
