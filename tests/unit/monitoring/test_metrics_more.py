"""Brier score, per-class precision/recall/F1/support, the precision-recall curve and average precision agree
with scikit-learn on its bundled datasets.

Tolerance 1e-12 throughout: these figures are the same arithmetic on the same counts as scikit-learn's (exact
integer counts, one division, the same summation order), so they agree to rounding, not to an approximation.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.monitoring.json_reading import Fields, classification_from_dict
from shipyard.monitoring.metrics import classification_performance
from shipyard.monitoring.precision_recall import MAX_CURVE_POINTS, precision_recall

EXACT = 1e-12

Fitted = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _json(result: Any) -> dict[str, Any]:
    """Round-trip through strict JSON: a NaN or infinity anywhere fails the test."""
    return json.loads(json.dumps(result.to_dict(), allow_nan=False))


def _fitted(loader: Any, *, string_labels: bool = False) -> Fitted:
    """A weak logistic regression trained on half of a bundled dataset: labels, predictions, probabilities,
    classes of the other half (weak, so the curves have errors to show)."""
    data = loader()
    x, y = data.data, data.target
    if string_labels:
        y = np.asarray(data.target_names)[y]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000)).fit(x[::2], y[::2])
    return y[1::2], model.predict(x[1::2]), model.predict_proba(x[1::2]), model.classes_


@pytest.fixture(scope="module")
def cancer() -> Fitted:
    return _fitted(load_breast_cancer)


@pytest.fixture(scope="module")
def iris() -> Fitted:
    return _fitted(load_iris, string_labels=True)


@pytest.fixture(scope="module")
def wine() -> Fitted:
    return _fitted(load_wine)


# --- Brier score ------------------------------------------------------------------------------------------


def test_binary_brier_score_equals_scikit_learns_for_either_positive_class(cancer: Fitted) -> None:
    y, pred, proba, classes = cancer
    for positive in (1, 0):
        result = classification_performance(y, pred, proba, classes=classes, positive=positive)
        expected = skm.brier_score_loss(y, proba[:, positive], pos_label=positive)
        assert result.brier_score == pytest.approx(expected, abs=EXACT, rel=0)
        assert "brier_score" not in result.notes  # the usual binary definition needs no explaining


@pytest.mark.parametrize("dataset", ["iris", "wine"])
def test_multiclass_brier_score_is_the_sum_over_classes_as_scikit_learn_computes_it(
    dataset: str, request: pytest.FixtureRequest
) -> None:
    y, pred, proba, classes = request.getfixturevalue(dataset)
    result = classification_performance(y, pred, proba, classes=classes)
    # scikit-learn >= 1.7 scores multiclass probabilities with the sum over classes, unscaled, in [0, 2].
    expected = skm.brier_score_loss(y, proba, labels=classes, scale_by_half=False)
    assert result.brier_score == pytest.approx(expected, abs=EXACT, rel=0)
    onehot = (y[:, None] == classes[None, :]).astype(float)
    assert result.brier_score == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)), abs=EXACT, rel=0)
    assert "summed over the 3 classes" in result.notes["brier_score"]


def test_brier_score_needs_probabilities_and_says_so(cancer: Fitted) -> None:
    y, pred, _, classes = cancer
    result = classification_performance(y, pred, classes=classes)
    assert result.brier_score is None and result.average_precision is None
    assert result.precision_recall_curve is None
    assert "Brier score" in result.notes["probabilities"]
    assert _json(result)["brier_score"] is None


# --- per-class precision, recall, F1, support -------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["cancer", "iris", "wine"])
def test_per_class_figures_equal_precision_recall_fscore_support(dataset: str, request: pytest.FixtureRequest) -> None:
    y, pred, proba, classes = request.getfixturevalue(dataset)
    result = classification_performance(y, pred, proba, classes=classes)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=classes, average=None, zero_division=np.nan
    )
    assert [c.label for c in result.per_class] == list(classes)
    for i, scores in enumerate(result.per_class):
        assert scores.precision == pytest.approx(precision[i], abs=EXACT, rel=0)
        assert scores.recall == pytest.approx(recall[i], abs=EXACT, rel=0)
        assert scores.f1 == pytest.approx(f1[i], abs=EXACT, rel=0)
        assert scores.support == support[i]
        assert scores.predicted == int((pred == classes[i]).sum())
    assert "per_class" not in result.notes
    written = _json(result)["per_class"]
    assert [row["class"] for row in written] == [c.item() if hasattr(c, "item") else c for c in classes]


def test_a_class_never_predicted_has_no_precision_and_a_note_saying_why(iris: Fitted) -> None:
    y, pred, proba, classes = iris
    collapsed = np.where(pred == "virginica", "versicolor", pred)  # a model that never says virginica
    result = classification_performance(y, collapsed, proba, classes=classes)
    virginica = result.per_class[2]
    assert virginica.label == "virginica" and virginica.predicted == 0
    assert virginica.precision is None and virginica.recall == 0.0 and virginica.f1 == 0.0
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, collapsed, labels=classes, average=None, zero_division=np.nan
    )
    assert np.isnan(precision[2]) and recall[2] == 0.0 and f1[2] == 0.0  # scikit-learn agrees on which is undefined
    assert "never predicted: ['virginica']" in result.notes["per_class"]
    assert _json(result)["per_class"][2]["precision"] is None


def test_a_class_neither_labelled_nor_predicted_has_no_rates_at_all() -> None:
    result = classification_performance(["a", "a", "b"], ["a", "b", "b"], classes=["a", "b", "c"])
    c = result.per_class[2]
    assert (c.precision, c.recall, c.f1, c.support, c.predicted) == (None, None, None, 0, 0)
    assert "no label names: ['c']" in result.notes["per_class"]
    _json(result)


# --- precision-recall curve and average precision ---------------------------------------------------------


def test_a_short_curve_is_scikit_learns_point_for_point() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    p1 = np.round(np.clip(rng.random(300) * 0.6 + y * 0.3, 0, 1), 2)  # ties: fewer distinct scores than rows
    result = precision_recall(y == 1, p1, positive=1)
    assert result is not None
    curve, average = result
    precision, recall, thresholds = skm.precision_recall_curve(y, p1)
    assert curve.points == precision.size <= MAX_CURVE_POINTS
    np.testing.assert_allclose(curve.precision, precision, rtol=0, atol=EXACT)
    np.testing.assert_allclose(curve.recall, recall, rtol=0, atol=EXACT)
    np.testing.assert_allclose(curve.thresholds, thresholds, rtol=0, atol=EXACT)
    assert average == pytest.approx(skm.average_precision_score(y, p1), abs=EXACT, rel=0)


def test_a_long_curve_is_thinned_to_points_of_scikit_learns_curve(cancer: Fitted) -> None:
    y, pred, proba, classes = cancer
    result = classification_performance(y, pred, proba, classes=classes)
    curve = result.precision_recall_curve
    assert curve is not None and curve.positive == 1
    precision, recall, thresholds = skm.precision_recall_curve(y, proba[:, 1])
    assert curve.points == precision.size > MAX_CURVE_POINTS
    assert len(curve.precision) == len(curve.recall) == MAX_CURVE_POINTS == len(curve.thresholds) + 1
    # Every kept point is one of scikit-learn's, in order, from the full-recall end to (recall 0, precision 1).
    index = [int(np.flatnonzero(thresholds == t)[0]) for t in curve.thresholds] + [precision.size - 1]
    assert index == sorted(index) and index[0] == 0
    np.testing.assert_allclose(curve.precision, precision[index], rtol=0, atol=EXACT)
    np.testing.assert_allclose(curve.recall, recall[index], rtol=0, atol=EXACT)
    # Average precision comes from the full curve, not the thinned one.
    assert result.average_precision == pytest.approx(skm.average_precision_score(y, proba[:, 1]), abs=EXACT, rel=0)


@pytest.mark.parametrize(("dataset", "positive"), [("iris", "virginica"), ("wine", 1), ("cancer", 0)])
def test_average_precision_of_a_chosen_class_equals_scikit_learns(
    dataset: str, positive: Any, request: pytest.FixtureRequest
) -> None:
    y, pred, proba, classes = request.getfixturevalue(dataset)
    result = classification_performance(y, pred, proba, classes=classes, positive=positive)
    column = list(classes).index(positive)
    expected = skm.average_precision_score(y == positive, proba[:, column])
    assert result.average_precision == pytest.approx(expected, abs=EXACT, rel=0)
    assert result.precision_recall_curve is not None and result.precision_recall_curve.positive == positive


def test_a_multiclass_model_without_a_chosen_class_has_no_curve_and_says_how_to_get_one(wine: Fitted) -> None:
    y, pred, proba, classes = wine
    result = classification_performance(y, pred, proba, classes=classes)
    assert result.average_precision is None and result.precision_recall_curve is None
    assert "positive=" in result.notes["average_precision"]


@pytest.mark.parametrize("label", ["yes", "no"])
def test_with_one_class_in_the_labels_average_precision_is_none_with_a_reason(label: str) -> None:
    result = classification_performance(
        [label] * 3, ["yes", "no", "yes"], [[0.2, 0.8], [0.7, 0.3], [0.4, 0.6]], classes=["no", "yes"]
    )
    assert result.average_precision is None and result.precision_recall_curve is None
    assert f"labels hold only ['{label}']" in result.notes["average_precision"]
    assert result.brier_score is not None  # a squared error is defined for any labels
    written = _json(result)
    assert written["average_precision"] is None and written["precision_recall_curve"] is None


def test_a_million_scores_give_a_bounded_curve_quickly() -> None:
    rng = np.random.default_rng(11)
    y = rng.random(1_000_000) < 0.1
    scores = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1)
    started = time.perf_counter()
    result = precision_recall(y, scores, positive=True)
    elapsed_s = time.perf_counter() - started
    assert result is not None
    curve, average = result
    assert len(curve.precision) == MAX_CURVE_POINTS and curve.points > 900_000
    assert average == pytest.approx(skm.average_precision_score(y, scores), abs=1e-10, rel=0)  # 1M-term sums
    assert elapsed_s < 2.0  # a sort and a cumulative sum: ~0.1 s here; generous for a shared CI core


# --- through JSON -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["cancer", "iris"])
def test_the_new_figures_survive_json_and_back(dataset: str, request: pytest.FixtureRequest) -> None:
    y, pred, proba, classes = request.getfixturevalue(dataset)
    result = classification_performance(
        y, pred, proba, classes=[c.item() if hasattr(c, "item") else c for c in classes]
    )
    assert classification_from_dict(Fields(_json(result), "performance")) == result


def test_a_report_written_before_these_figures_still_reads(cancer: Fitted) -> None:
    y, pred, proba, classes = cancer
    written = _json(classification_performance(y, pred, proba, classes=[int(c) for c in classes]))
    for key in ("brier_score", "average_precision", "per_class", "precision_recall_curve"):
        del written[key]
    read = classification_from_dict(Fields(written, "performance"))
    assert read.brier_score is None and read.per_class == () and read.precision_recall_curve is None
    assert read.accuracy == written["accuracy"]
