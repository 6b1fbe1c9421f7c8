"""CBPE's metrics from the windows' class histograms: the same as from the rows, mergeable, with honest bands.

The row-level reference below is NannyML's CBPE arithmetic written out (expected confusion counts from the
calibrated probabilities; ROC AUC by sorting rows on the raw score), so the histograms are checked against
the definition rather than against themselves. NannyML itself is compared in
``tests/integration/test_cbpe_nannyml.py``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from shipyard.core.calibrator import ClassCalibrator, ConfidenceCalibrator
from shipyard.core.signature import FeatureSpec, FeatureType, OutputKind, OutputSpec, Signature
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.calibration import fit_confidence_calibrator
from shipyard.monitoring.cbpe import MIN_ROWS, ClassProbabilities, estimate_performance, window_estimate
from shipyard.monitoring.cbpe_calibration import calibrated_probabilities
from shipyard.monitoring.cbpe_records import CbpeEstimate
from shipyard.monitoring.json_reading import Fields
from shipyard.monitoring.window import LiveWindow, Profiler, WindowProfile

# Rows in one histogram bin count as ties; bins are 0.01 wide (a quarter logit in the tails), which moves
# ROC AUC by well under this on the models below (measured: < 5e-4).
AUC_BINNING_TOLERANCE = 2e-3


def _model_rows(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """(reference probabilities, reference labels, live probabilities, classes) of an overconfident naive Bayes."""
    if kind == "binary":
        x, y = make_classification(4000, 10, n_informative=3, n_redundant=5, flip_y=0.05, random_state=seed)
    else:
        x, y = make_classification(
            4000, 10, n_informative=5, n_redundant=3, n_classes=4, n_clusters_per_class=1, random_state=seed
        )
    model = GaussianNB().fit(x[:2000], y[:2000])
    return model.predict_proba(x[:2000]), y[:2000], model.predict_proba(x[2000:]), [int(c) for c in model.classes_]


def _row_auc(calibrated: np.ndarray, raw: np.ndarray) -> float:
    order = np.argsort(raw)[::-1]
    tps = np.r_[0, np.cumsum(calibrated[order])]
    fps = np.r_[0, np.arange(1, raw.size + 1) - tps[1:]]
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def _row_metrics(proba: np.ndarray, calibrated: np.ndarray) -> dict[str, float]:
    """NannyML's per-row CBPE: binary on the second class, multiclass as the mean over classes."""
    predicted = proba.argmax(axis=1)
    k = proba.shape[1]
    per_class = []
    for c in range(k):
        p, hit = calibrated[:, c], predicted == c
        tp, fp, fn = p[hit].sum(), (1 - p[hit]).sum(), p[~hit].sum()
        per_class.append(
            {
                "precision": tp / (tp + fp),
                "recall": tp / (tp + fn),
                "f1": tp / (tp + 0.5 * (fp + fn)),
                "roc_auc": _row_auc(p, proba[:, c]),
            }
        )
    accuracy = float(calibrated[np.arange(len(proba)), predicted].mean())
    if k == 2:
        return {"accuracy": accuracy, **per_class[1]}
    return {"accuracy": accuracy, **{m: float(np.mean([c[m] for c in per_class])) for m in per_class[0]}}


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_histogram_estimates_equal_the_row_level_cbpe(kind: str) -> None:
    reference, labels, live, classes = _model_rows(kind)
    calibrator = fit_confidence_calibrator(labels, reference, classes)
    assert calibrator.per_class is not None and len(calibrator.per_class) == len(classes)
    assert any(not c.identity for c in calibrator.per_class)  # naive Bayes is overconfident: it gets calibrated
    expected = _row_metrics(live, calibrated_probabilities(live, calibrator))

    estimate = estimate_performance(ClassProbabilities.of(live, calibrator), classes, calibrated=True)

    assert estimate.rows == len(live) and estimate.average == ("binary" if kind == "binary" else "macro")
    for metric in ("accuracy", "precision", "recall", "f1"):
        assert estimate.metrics[metric].value == pytest.approx(expected[metric], abs=1e-12), metric
    assert estimate.metrics["roc_auc"].value == pytest.approx(expected["roc_auc"], abs=AUC_BINNING_TOLERANCE)


def test_windows_merge_to_the_estimate_of_all_their_rows_and_survive_json() -> None:
    reference, labels, live, classes = _model_rows("multiclass", seed=3)
    calibrator = fit_confidence_calibrator(labels, reference, classes)
    whole = ClassProbabilities.of(live, calibrator)
    parts = [ClassProbabilities.of(chunk, calibrator) for chunk in np.array_split(live, 7)]
    stored = [ClassProbabilities.from_dict(json.loads(json.dumps(p.to_dict()))) for p in parts]
    merged = stored[0]
    for part in stored[1:]:
        assert merged is not None and part is not None
        merged = merged.merge(part)
    assert merged is not None
    np.testing.assert_array_equal(merged.counts, whole.counts)
    np.testing.assert_allclose(merged.sums, whole.sums, rtol=1e-12, atol=1e-9)
    a = estimate_performance(merged, classes, calibrated=True)
    b = estimate_performance(whole, classes, calibrated=True)
    for metric, value in a.metrics.items():
        assert value.value == pytest.approx(b.metrics[metric].value, abs=1e-12)
    with pytest.raises(InvalidArgumentError, match="cannot merge class-probability histograms"):
        whole.merge(ClassProbabilities.empty(2))


def test_served_window_carries_the_state_through_the_profile_and_reads_old_windows() -> None:
    reference, labels, live, classes = _model_rows("binary", seed=5)
    calibrator = fit_confidence_calibrator(labels, reference, classes)
    signature = Signature(
        features=(FeatureSpec("f0", FeatureType.FLOAT),),
        output=OutputSpec(OutputKind.CLASSIFICATION, "int64", classes=tuple(classes), has_probabilities=True),
    )
    window = LiveWindow(Profiler(signature, None, calibrator=calibrator))
    for chunk in np.array_split(live, 4):
        window.add_rows({"f0": np.zeros(len(chunk))}, chunk.argmax(axis=1), chunk)
    stored = WindowProfile.from_dict(json.loads(json.dumps(window.snapshot().to_dict())))
    assert stored.class_probabilities is not None
    served = window_estimate(stored.class_probabilities, classes, calibrator, uncalibrated="none")
    direct = estimate_performance(ClassProbabilities.of(live, calibrator), classes, calibrated=True)
    assert served is not None and served.calibrated and served.note is None
    assert served.metrics["f1"].value == pytest.approx(direct.metrics["f1"].value, abs=1e-12)

    old = window.snapshot().to_dict()
    del old["class_probabilities"]
    assert WindowProfile.from_dict(old).class_probabilities is None
    assert window_estimate(None, classes, calibrator, uncalibrated="none") is None


def test_calibrators_stored_before_per_class_calibration_still_read_and_say_so() -> None:
    reference, labels, live, classes = _model_rows("binary", seed=6)
    calibrator = fit_confidence_calibrator(labels, reference, classes)
    stored = json.loads(json.dumps(calibrator.to_dict()))
    assert ConfidenceCalibrator.from_dict(stored) == calibrator
    del stored["per_class"]
    old = ConfidenceCalibrator.from_dict(stored)
    assert old.per_class is None and old.accuracy == calibrator.accuracy

    estimate = window_estimate(ClassProbabilities.of(live, old), classes, old, uncalibrated="no target")
    assert estimate is not None and estimate.calibrated is False
    assert estimate.note is not None and "stored before per-class calibration" in estimate.note
    raw = _row_metrics(live, live)  # without calibrators, the model's own probabilities
    assert estimate.metrics["precision"].value == pytest.approx(raw["precision"], abs=1e-12)
    none = window_estimate(ClassProbabilities.of(live), classes, None, uncalibrated="no target")
    assert none is not None and none.note == "no target"


def test_isotonic_calibration_pulls_an_overconfident_model_to_its_real_rate() -> None:
    rng = np.random.default_rng(0)
    claimed = rng.uniform(0.9, 1.0, 20_000)  # says 90-100% sure of the positive class ...
    truth = rng.random(20_000) < 0.6  # ... which is the label 60% of the time
    proba = np.column_stack([1 - claimed, claimed])
    calibrator = fit_confidence_calibrator(truth.astype(int), proba, [0, 1])
    assert calibrator.per_class is not None and not calibrator.per_class[1].identity
    estimate = estimate_performance(ClassProbabilities.of(proba, calibrator), [0, 1], calibrated=True)
    precision = estimate.metrics["precision"]
    assert precision.value == pytest.approx(0.6, abs=0.01)
    assert precision.lower is not None and precision.upper is not None
    assert precision.lower < 0.6 < precision.upper


def test_a_calibrated_model_keeps_close_to_its_own_probabilities() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 20_000)
    truth = (rng.random(20_000) < p).astype(int)  # calibrated by construction
    proba = np.column_stack([1 - p, p])
    calibrator = fit_confidence_calibrator(truth, proba, [0, 1])
    moved = np.abs(calibrated_probabilities(proba, calibrator)[:, 1] - p)
    assert float(moved.mean()) < 0.02  # isotonic steps around the diagonal, no systematic shift


def test_sampling_error_matches_the_spread_of_realised_metrics_under_the_calibrated_probabilities() -> None:
    """Labels drawn from the calibrated probabilities 400 times: each realised metric's standard deviation is
    within 15% of the stated sampling error (400 draws estimate a standard deviation to about 3.5%; the delta
    method is an approximation), and about 99.7% of draws fall in the ±3 SE band."""
    x, y = make_classification(3000, 6, n_informative=3, random_state=2)
    model = LogisticRegression(max_iter=1000).fit(x[:1500], y[:1500])
    proba = model.predict_proba(x[1500:])
    estimate = estimate_performance(ClassProbabilities.of(proba), [0, 1], calibrated=False)
    rng = np.random.default_rng(4)
    predicted = proba.argmax(axis=1)
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    scorers = {
        "accuracy": lambda t: accuracy_score(t, predicted),
        "precision": lambda t: precision_score(t, predicted),
        "recall": lambda t: recall_score(t, predicted),
        "f1": lambda t: f1_score(t, predicted),
        "roc_auc": lambda t: roc_auc_score(t, proba[:, 1]),
    }
    draws = {m: [] for m in scorers}
    for _ in range(400):
        truth = (rng.random(len(proba)) < proba[:, 1]).astype(int)
        for metric, score in scorers.items():
            draws[metric].append(float(score(truth)))
    for metric, values in draws.items():
        stated = estimate.metrics[metric]
        assert stated.sampling_error is not None and stated.lower is not None and stated.upper is not None
        assert np.std(values) == pytest.approx(stated.sampling_error, rel=0.15), metric
        inside = np.mean([(stated.lower <= v <= stated.upper) for v in values])
        assert inside >= 0.98, metric


def _json_has_no_nan(estimate: CbpeEstimate) -> dict[str, object]:
    text = json.dumps(estimate.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert CbpeEstimate.from_fields(Fields(data, "cbpe")) == estimate
    return data


def test_a_window_too_small_or_with_one_predicted_class_says_why_instead_of_a_number() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.0, 0.4, 200)  # never predicted positive
    proba = np.column_stack([1 - p, p])
    estimate = estimate_performance(ClassProbabilities.of(proba), ["no", "yes"], calibrated=False)
    assert estimate.metrics["precision"].value is None
    assert estimate.metrics["precision"].reason == "no row was predicted as class 'yes'"
    assert estimate.metrics["recall"].value is not None and estimate.metrics["roc_auc"].value is not None
    _json_has_no_nan(estimate)

    small = estimate_performance(ClassProbabilities.of(proba[: MIN_ROWS - 1]), ["no", "yes"], calibrated=False)
    for metric in small.metrics.values():
        assert (
            metric.value is None and metric.reason == f"only {MIN_ROWS - 1} rows in the window; CBPE needs at least 30"
        )
    _json_has_no_nan(small)

    certain = np.tile([1.0, 0.0, 0.0], (100, 1))  # one class only, predicted with certainty
    one_class = estimate_performance(ClassProbabilities.of(certain), ["a", "b", "c"], calibrated=False)
    assert one_class.metrics["accuracy"].value == 1.0
    assert one_class.metrics["precision"].value is None
    assert one_class.metrics["precision"].reason is not None
    assert "class 'b'" in one_class.metrics["precision"].reason
    assert one_class.classes[0].metrics["roc_auc"].value is None
    data = _json_has_no_nan(one_class)
    assert all(not isinstance(v, float) or math.isfinite(v) for v in data["metrics"]["roc_auc"].values())

    mismatch = window_estimate(ClassProbabilities.of(certain), ["a", "b"], None, uncalibrated="none")
    assert mismatch is not None and mismatch.metrics["accuracy"].value is None
    assert mismatch.metrics["accuracy"].reason == "the windows hold 3 class probabilities but the model names 2 classes"


def test_class_calibrator_checks_its_points() -> None:
    with pytest.raises(InvalidArgumentError, match="one value per threshold"):
        ClassCalibrator((0.1, 0.2), (0.5,))
    with pytest.raises(InvalidArgumentError, match="fractions in"):
        ClassCalibrator((0.1, 2.0), (0.5, 0.6))
    calibrator = ClassCalibrator((0.2, 0.8), (0.1, 0.9))
    np.testing.assert_allclose(calibrator.apply([0.0, 0.5, 1.0]), [0.1, 0.5, 0.9])
