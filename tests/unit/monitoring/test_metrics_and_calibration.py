"""Performance, calibration, the label-free accuracy estimate and reward rates agree with references."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve as sk_calibration_curve
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.calibration import (
    AccuracyEstimate,
    CalibrationResult,
    ConfidenceSummary,
    calibration_curve,
    estimate_accuracy,
    fit_confidence_calibrator,
)
from shipyard.monitoring.metrics import classification_performance, regression_performance
from shipyard.monitoring.rewards import reward_summary


def _json(result: Any) -> dict[str, Any]:
    """Round-trip through strict JSON: a NaN or infinity anywhere fails the test."""
    return json.loads(json.dumps(result.to_dict(), allow_nan=False))


def _fitted(loader: Any, *, string_labels: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A logistic regression trained on half of a bundled dataset: labels, predictions, probabilities, classes."""
    data = loader()
    x, y = data.data, data.target
    if string_labels:
        y = np.asarray(data.target_names)[y]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=1000)).fit(x[::2], y[::2])
    return y[1::2], model.predict(x[1::2]), model.predict_proba(x[1::2]), model.classes_


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _fitted(load_breast_cancer)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _fitted(load_iris, string_labels=True)


# --- classification ---------------------------------------------------------------------------------------


def test_binary_figures_equal_scikit_learns_for_the_second_class(cancer: tuple[np.ndarray, ...]) -> None:
    y, pred, proba, classes = cancer
    result = classification_performance(y, pred, proba, classes=classes)
    assert result.average == "binary" and result.positive == 1 and result.n == y.size
    assert result.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert result.precision == pytest.approx(skm.precision_score(y, pred))
    assert result.recall == pytest.approx(skm.recall_score(y, pred))
    assert result.f1 == pytest.approx(skm.f1_score(y, pred))
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert result.log_loss == pytest.approx(skm.log_loss(y, proba))
    assert np.array_equal(result.confusion_matrix, skm.confusion_matrix(y, pred, labels=classes))
    assert result.calibration is not None and result.calibration.method == "positive_class"
    _json(result)


def test_binary_figures_follow_the_chosen_positive_class(cancer: tuple[np.ndarray, ...]) -> None:
    y, pred, proba, classes = cancer
    result = classification_performance(y, pred, proba, classes=classes, positive=0)
    assert result.positive == 0
    assert result.precision == pytest.approx(skm.precision_score(y, pred, pos_label=0))
    assert result.recall == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(y == 0, proba[:, 0]))


def test_multiclass_figures_equal_scikit_learns_macro_averages_with_string_labels(iris: tuple[np.ndarray, ...]) -> None:
    y, pred, proba, classes = iris
    result = classification_performance(y, pred, proba, classes=classes)
    assert result.average == "macro" and result.positive is None
    assert result.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert result.precision == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert result.recall == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert result.f1 == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert result.log_loss == pytest.approx(skm.log_loss(y, proba, labels=classes))
    assert result.calibration is not None and result.calibration.method == "top_label"
    assert _json(result)["confusion_matrix"]["labels"] == ["setosa", "versicolor", "virginica"]


def test_multiclass_model_can_be_scored_for_one_class_against_the_rest(iris: tuple[np.ndarray, ...]) -> None:
    y, pred, proba, classes = iris
    result = classification_performance(y, pred, proba, classes=classes, positive="virginica")
    assert result.average == "one_vs_rest"
    assert result.precision == pytest.approx(skm.precision_score(y, pred, labels=["virginica"], average="macro"))
    assert result.recall == pytest.approx(skm.recall_score(y, pred, labels=["virginica"], average="macro"))
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(y == "virginica", proba[:, 2]))


def test_classes_default_to_the_sorted_labels_and_predictions_as_in_scikit_learn() -> None:
    result = classification_performance(["b", "a", "c", "a"], ["b", "a", "a", "c"])
    assert result.classes == ("a", "b", "c")
    assert result.precision == pytest.approx(
        skm.precision_score(["b", "a", "c", "a"], ["b", "a", "a", "c"], average="macro", zero_division=0)
    )


def test_roc_auc_handles_tied_scores_as_scikit_learn_does() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    p1 = np.round(rng.random(400) * 0.5 + y * 0.3, 1)  # few distinct values: many ties
    proba = np.column_stack([1 - p1, p1])
    result = classification_performance(y, (p1 > 0.5).astype(int), proba, classes=[0, 1])
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(y, p1))


def test_without_probabilities_the_probability_figures_are_none_and_say_why(cancer: tuple[np.ndarray, ...]) -> None:
    y, pred, _, classes = cancer
    result = classification_performance(y, pred, classes=classes)
    assert result.accuracy is not None
    assert result.roc_auc is None and result.log_loss is None and result.calibration is None
    assert "probabilities" in result.notes
    _json(result)


def test_roc_auc_is_none_with_a_reason_when_only_one_class_is_present() -> None:
    result = classification_performance(
        ["yes", "yes", "yes"], ["yes", "no", "yes"], [[0.2, 0.8], [0.7, 0.3], [0.4, 0.6]], classes=["no", "yes"]
    )
    assert result.roc_auc is None
    assert "yes" in result.notes["roc_auc"]
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.log_loss is not None
    assert _json(result)["roc_auc"] is None


def test_multiclass_roc_auc_averages_over_classes_present_and_notes_the_rest(iris: tuple[np.ndarray, ...]) -> None:
    y, pred, proba, classes = iris
    keep = y != "setosa"
    result = classification_performance(y[keep], pred[keep], proba[keep], classes=classes)
    expected = np.mean([skm.roc_auc_score(y[keep] == c, proba[keep][:, i]) for i, c in enumerate(classes) if i > 0])
    assert result.roc_auc == pytest.approx(expected)
    assert "setosa" in result.notes["roc_auc"]


def test_labels_outside_the_models_classes_are_counted_and_left_out(cancer: tuple[np.ndarray, ...]) -> None:
    y, pred, proba, classes = cancer
    labels = y.astype(object)
    labels[:7] = "unknown"
    labels[7:10] = None
    result = classification_performance(labels, pred, proba, classes=classes)
    kept = slice(10, None)
    assert result.unknown_labels == 10 and result.n == y.size - 10
    assert set(result.unknown_label_values) == {"unknown", "None"}
    assert result.accuracy == pytest.approx(skm.accuracy_score(y[kept], pred[kept]))
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(y[kept], proba[kept][:, 1]))
    _json(result)


def test_labels_of_another_type_than_the_classes_are_reported_not_matched() -> None:
    result = classification_performance(["0", "1", "1"], [0, 1, 1], classes=[0, 1])
    assert result.n == 0 and result.unknown_labels == 3 and result.accuracy is None
    assert set(result.unknown_label_values) == {"0", "1"}


def test_rows_without_probabilities_are_left_out_of_probability_figures_only(cancer: tuple[np.ndarray, ...]) -> None:
    y, pred, proba, classes = cancer
    holed = proba.copy()
    holed[:5] = np.nan
    result = classification_performance(y, pred, holed, classes=classes)
    assert result.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert result.log_loss == pytest.approx(skm.log_loss(y[5:], proba[5:]))
    assert result.calibration is not None and result.calibration.n == y.size - 5
    assert "5 scored rows" in result.notes["probabilities"]


def test_empty_input_gives_none_figures_and_json() -> None:
    result = classification_performance([], [], np.empty((0, 2)), classes=["a", "b"])
    data = _json(result)
    assert data["n"] == 0 and data["accuracy"] is None and data["roc_auc"] is None
    assert data["confusion_matrix"]["matrix"] == [[0, 0], [0, 0]]
    assert _json(classification_performance([], []))["classes"] == []


def test_a_certain_miss_costs_what_scikit_learn_charges_not_infinity() -> None:
    proba = [[0.0, 1.0], [1.0, 0.0], [0.3, 0.7]]
    result = classification_performance([0, 0, 1], [1, 0, 1], proba, classes=[0, 1])
    assert result.log_loss == pytest.approx(skm.log_loss([0, 0, 1], proba))
    assert result.log_loss is not None and result.log_loss > 10
    _json(result)


def test_precision_with_no_predicted_positives_is_zero_with_a_note_as_in_scikit_learn() -> None:
    result = classification_performance([0, 1, 1], [0, 0, 0], classes=[0, 1])
    assert result.precision == skm.precision_score([0, 1, 1], [0, 0, 0], zero_division=0) == 0.0
    assert "precision" in result.notes


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probabilities": np.full((3, 3), 1 / 3), "classes": [0, 1]}, "3 columns"),
        ({"probabilities": [[0.5, 0.5]], "classes": [0, 1]}, "3 rows"),
        ({"probabilities": [[1.5, -0.5]] * 3, "classes": [0, 1]}, "[0, 1]"),
        ({"classes": [0, 0, 1]}, "distinct"),
        ({"classes": [0, 1], "positive": 7}, "positive=7"),
    ],
)
def test_caller_mistakes_raise_errors_that_name_the_problem(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        classification_performance([0, 1, 1], [0, 1, 0], **kwargs)


def test_inferred_classes_of_mixed_types_ask_for_explicit_classes() -> None:
    with pytest.raises(InvalidArgumentError, match="pass classes="):
        classification_performance([0, "1"], [0, "1"])
    assert classification_performance([0, "1"], [0, "1"], classes=[0, "1"]).accuracy == 1.0


# --- regression -------------------------------------------------------------------------------------------


def test_regression_figures_equal_scikit_learns() -> None:
    x, y = load_diabetes(return_X_y=True)
    pred = LinearRegression().fit(x[::2], y[::2]).predict(x[1::2])
    y = y[1::2]
    result = regression_performance(y, pred)
    assert result.n == y.size
    assert result.mae == pytest.approx(skm.mean_absolute_error(y, pred))
    assert result.rmse == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert result.r2 == pytest.approx(skm.r2_score(y, pred))
    assert result.mean_error == pytest.approx(np.mean(pred - y))
    _json(result)


def test_r2_is_none_for_constant_labels_or_a_single_row_and_missing_rows_are_counted() -> None:
    constant = regression_performance([3.0, 3.0, 3.0], [2.0, 3.0, 5.0])
    assert constant.r2 is None and "same" in constant.notes["r2"]
    assert constant.mean_error == pytest.approx(1 / 3)
    assert regression_performance([1.0], [2.0]).r2 is None
    holed = regression_performance([1.0, None, 3.0, 4.0], [1.0, 2.0, float("nan"), 5.0])
    assert holed.n == 2 and holed.missing == 2 and holed.mae == pytest.approx(0.5)
    empty = _json(regression_performance([], []))
    assert empty["n"] == 0 and empty["rmse"] is None


# --- calibration ------------------------------------------------------------------------------------------


def _direct_ece(confidence: np.ndarray, outcome: np.ndarray, bins: int) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for i in range(bins):
        inside = (confidence >= edges[i]) & ((confidence < edges[i + 1]) if i < bins - 1 else (confidence <= 1))
        if inside.any():
            total += inside.sum() / confidence.size * abs(confidence[inside].mean() - outcome[inside].mean())
    return total


def test_binary_ece_equals_a_direct_computation_on_the_positive_class(cancer: tuple[np.ndarray, ...]) -> None:
    y, _, proba, classes = cancer
    result = calibration_curve(y, proba, classes, bins=10)
    assert result.method == "positive_class" and result.positive == 1
    assert result.ece == pytest.approx(_direct_ece(proba[:, 1], (y == 1).astype(float), 10))
    assert sum(b.count for b in result.bins) == y.size


def test_multiclass_ece_equals_a_direct_computation_on_top_label_confidence(iris: tuple[np.ndarray, ...]) -> None:
    y, _, proba, classes = iris
    result = calibration_curve(y, proba, classes, bins=5)
    correct = (classes[proba.argmax(axis=1)] == y).astype(float)
    assert result.method == "top_label"
    assert result.ece == pytest.approx(_direct_ece(proba.max(axis=1), correct, 5))


def test_reliability_curve_matches_scikit_learns_and_leaves_empty_bins_blank() -> None:
    rng = np.random.default_rng(7)
    p = rng.beta(2, 5, 3000)
    y = (rng.random(3000) < p).astype(int)
    result = calibration_curve(y, np.column_stack([1 - p, p]), [0, 1], bins=10)
    filled = [b for b in result.bins if b.count]
    prob_true, prob_pred = sk_calibration_curve(y, p, n_bins=10, strategy="uniform")
    assert [b.fraction_positive for b in filled] == pytest.approx(prob_true)
    assert [b.mean_predicted for b in filled] == pytest.approx(prob_pred)
    sparse = calibration_curve([1, 0], [[0.05, 0.95], [0.9, 0.1]], [0, 1], bins=4)
    assert [b.count for b in sparse.bins] == [1, 0, 0, 1]
    assert _json(sparse)["bins"][1] == {
        "low": 0.25,
        "high": 0.5,
        "count": 0,
        "mean_predicted": None,
        "fraction_positive": None,
    }


def test_ece_is_near_zero_for_calibrated_probabilities_and_large_for_overconfident_ones() -> None:
    rng = np.random.default_rng(11)
    p = rng.random(20_000)
    y = (rng.random(p.size) < p).astype(int)
    calibrated = calibration_curve(y, np.column_stack([1 - p, p]), [0, 1])
    overconfident = np.clip(0.5 + 2.5 * (p - 0.5), 0, 1)  # stretched away from 0.5
    miscalibrated = calibration_curve(y, np.column_stack([1 - overconfident, overconfident]), [0, 1])
    assert calibrated.ece is not None and calibrated.ece < 0.015
    assert miscalibrated.ece is not None and miscalibrated.ece > 0.15


def test_calibration_copes_with_empty_input_and_unknown_labels() -> None:
    empty = calibration_curve([], np.empty((0, 3)), ["a", "b", "c"])
    assert isinstance(empty, CalibrationResult) and empty.ece is None and empty.n == 0
    assert _json(empty)["method"] == "top_label"
    mixed = calibration_curve(["a", "z"], [[0.9, 0.1], [0.5, 0.5]], ["a", "b"])
    assert mixed.n == 1 and mixed.unknown_labels == 1 and mixed.ece == pytest.approx(0.1)


# --- label-free accuracy estimate -------------------------------------------------------------------------


def _drawn(rng: np.random.Generator, n: int, k: int, truth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and labels drawn from them (from ``truth`` when the model is miscalibrated)."""
    proba = rng.dirichlet(np.full(k, 0.7), size=n)
    source = proba if truth is None else truth
    labels = (rng.random((n, 1)) > source.cumsum(axis=1)).sum(axis=1)
    return proba, np.minimum(labels, k - 1)


def _sharpen(proba: np.ndarray, power: float) -> np.ndarray:
    sharp = proba**power
    return sharp / sharp.sum(axis=1, keepdims=True)


def test_estimate_is_within_two_points_of_realised_accuracy_when_labels_follow_the_probabilities() -> None:
    rng = np.random.default_rng(5)
    proba, labels = _drawn(rng, 5_000, 3)
    realised = float((proba.argmax(axis=1) == labels).mean())
    estimate = estimate_accuracy(proba)
    assert estimate.n == 5_000 and not estimate.calibrated
    assert estimate.accuracy == pytest.approx(proba.max(axis=1).mean())
    assert abs(estimate.difference(realised) or 1.0) < 0.02


def test_calibrator_fitted_on_reference_corrects_an_overconfident_model() -> None:
    rng = np.random.default_rng(8)
    truth_ref, truth_live = rng.dirichlet(np.full(3, 0.7), size=5_000), rng.dirichlet(np.full(3, 0.7), size=5_000)
    _, ref_labels = _drawn(rng, 5_000, 3, truth=truth_ref)
    _, live_labels = _drawn(rng, 5_000, 3, truth=truth_live)
    ref_proba, live_proba = _sharpen(truth_ref, 3.0), _sharpen(truth_live, 3.0)  # claims more than it knows
    realised = float((live_proba.argmax(axis=1) == live_labels).mean())

    calibrator = fit_confidence_calibrator(ref_labels, ref_proba, [0, 1, 2])
    raw, corrected = estimate_accuracy(live_proba), estimate_accuracy(live_proba, calibrator)
    assert corrected.calibrated and corrected.mean_confidence == raw.mean_confidence
    assert abs(raw.difference(realised) or 0.0) > 0.05
    assert abs(corrected.difference(realised) or 1.0) < 0.02
    assert all(a <= b for a, b in zip(calibrator.accuracy, calibrator.accuracy[1:], strict=False))


def test_estimate_from_merged_window_summaries_equals_the_estimate_from_rows() -> None:
    rng = np.random.default_rng(9)
    proba, labels = _drawn(rng, 3_000, 4)
    calibrator = fit_confidence_calibrator(labels, _sharpen(proba, 2.0), [0, 1, 2, 3])
    windows = [ConfidenceSummary.of(part) for part in np.array_split(proba, 5)]
    merged = ConfidenceSummary.empty()
    for window in windows:
        merged = merged.merge(ConfidenceSummary.from_dict(json.loads(json.dumps(window.to_dict()))))
    assert merged.n == 3_000
    for cal in (None, calibrator):
        from_rows, from_summary = estimate_accuracy(proba, cal), estimate_accuracy(merged, cal)
        assert from_summary.accuracy == pytest.approx(from_rows.accuracy)
    assert estimate_accuracy(proba, calibrator).accuracy == pytest.approx(calibrator.apply(proba.max(axis=1)).mean())


def test_calibrator_round_trips_through_json_and_rejects_other_bins() -> None:
    rng = np.random.default_rng(10)
    proba, labels = _drawn(rng, 1_000, 2)
    calibrator = fit_confidence_calibrator(np.array(["no", "yes"])[labels], proba, ["no", "yes"], bins=10)
    restored = ConfidenceCalibrator.from_dict(json.loads(json.dumps(calibrator.to_dict(), allow_nan=False)))
    assert restored == calibrator and restored.bins == 10 and sum(restored.counts) == 1_000
    with pytest.raises(InvalidArgumentError, match="same bins"):
        estimate_accuracy(ConfidenceSummary.of(proba), restored)
    with pytest.raises(InvalidArgumentError, match="histogram_binning"):
        ConfidenceCalibrator.from_dict({"kind": "platt", "accuracy": [0.5], "counts": [1]})


def test_calibrator_says_which_rows_it_was_fitted_on_and_reads_older_records_as_training() -> None:
    rng = np.random.default_rng(11)
    proba, labels = _drawn(rng, 500, 2)
    holdout = fit_confidence_calibrator(labels, proba, [0, 1], data="holdout")
    assert holdout.data == "holdout" and holdout.rows == 500
    assert ConfidenceCalibrator.from_dict(json.loads(json.dumps(holdout.to_dict()))) == holdout
    older = {k: v for k, v in holdout.to_dict().items() if k != "data"}  # stored before the field existed
    assert ConfidenceCalibrator.from_dict(older).data == "training"
    with pytest.raises(InvalidArgumentError, match=r"one of \['training', 'holdout'\]; got 'validation'"):
        fit_confidence_calibrator(labels, proba, [0, 1], data="validation")


def test_calibrator_with_no_reference_rows_trusts_the_models_confidence() -> None:
    calibrator = fit_confidence_calibrator([], np.empty((0, 2)), [0, 1], bins=4)
    assert calibrator.accuracy == pytest.approx((0.125, 0.375, 0.625, 0.875))
    unknown = fit_confidence_calibrator(["x", 0], [[0.9, 0.1], [0.8, 0.2]], [0, 1], bins=4)
    assert unknown.unknown_labels == 1 and sum(unknown.counts) == 1


def test_estimate_of_nothing_is_none() -> None:
    estimate = estimate_accuracy(np.empty((0, 3)))
    assert isinstance(estimate, AccuracyEstimate) and estimate.accuracy is None and estimate.n == 0
    assert estimate.difference(0.9) is None
    assert _json(estimate) == {"n": 0, "accuracy": None, "mean_confidence": None, "calibrated": False}
    assert estimate_accuracy(ConfidenceSummary.empty()).accuracy is None


# --- reward rate ------------------------------------------------------------------------------------------


def test_binary_rewards_get_the_wilson_interval() -> None:
    rewards = np.r_[np.ones(37), np.zeros(63)]
    summary = reward_summary(rewards)
    expected = scipy_stats.binomtest(37, 100).proportion_ci(0.95, method="wilson")
    assert summary.interval == "wilson" and summary.mean == pytest.approx(0.37)
    assert (summary.ci_low, summary.ci_high) == pytest.approx((expected.low, expected.high))
    none_yet = reward_summary([0, 0, 0, 0, 0])
    assert none_yet.ci_low == 0.0 and none_yet.ci_high is not None and none_yet.ci_high > 0.3


def test_other_rewards_get_the_t_interval_which_covers_the_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(12)
    rewards = rng.gamma(2.0, 3.0, 40)
    summary = reward_summary(rewards)
    low, high = scipy_stats.t.interval(0.95, 39, loc=rewards.mean(), scale=scipy_stats.sem(rewards))
    assert summary.interval == "t" and (summary.ci_low, summary.ci_high) == pytest.approx((low, high))
    covered = 0
    for _ in range(400):
        s = reward_summary(rng.normal(2.0, 1.0, 30))
        covered += s.ci_low is not None and s.ci_high is not None and s.ci_low <= 2.0 <= s.ci_high
    assert 0.92 <= covered / 400 <= 0.98


def test_reward_summary_copes_with_no_one_or_missing_rewards() -> None:
    assert _json(reward_summary([])) == {
        "n": 0,
        "mean": None,
        "ci_low": None,
        "ci_high": None,
        "confidence": 0.95,
        "interval": None,
        "missing": 0,
    }
    single = reward_summary([4.5])
    assert single.mean == 4.5 and single.ci_low is None and single.interval is None
    holed = reward_summary([1.0, None, float("nan"), 3.0])
    assert holed.n == 2 and holed.missing == 2 and holed.mean == 2.0
    with pytest.raises(InvalidArgumentError, match="confidence"):
        reward_summary([1.0], confidence=95)
