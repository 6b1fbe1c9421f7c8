"""Label drift: feedback labels against the training target, by class for classifiers, binned for regressors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.core.profile import build_reference_profile, numeric_profile
from shipyard.core.signature import OutputKind
from shipyard.monitoring.json_reading import Fields
from shipyard.monitoring.label_drift import LabelDrift, label_drift

FRAME = pd.DataFrame({"x": np.arange(1000.0)})


def class_target(share_of_ones: float, n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < share_of_ones).astype(np.int64)


def test_a_classifiers_target_is_counted_by_class_and_a_regressors_binned() -> None:
    classes = build_reference_profile(FRAME, classification=True, target=class_target(0.2, 1000, 0))
    assert classes.target is not None and set(classes.target.to_dict()["counts"]) == {"0", "1"}
    values = build_reference_profile(FRAME, target=np.linspace(0, 1, 1000))
    assert values.target is not None and values.target.to_dict()["kind"] == "numeric"


def test_a_moved_class_balance_is_flagged_with_the_prior_shift_per_class() -> None:
    reference = build_reference_profile(FRAME, classification=True, target=class_target(0.2, 1000, 0)).target
    predicted = numeric_profile([0.0])  # a regressor-like prediction profile gives no predicted shares
    labels = [1] * 150 + [0] * 150  # half positive, against a fifth in training
    result = label_drift(reference, labels, kind=OutputKind.CLASSIFICATION, predicted=predicted)
    assert result is not None and result.drifted
    assert result.drift is not None and result.drift.test == "chi2" and result.drift.p_value is not None
    assert result.drift.p_value < 1e-10
    shares = {share.label: share for share in result.priors}
    assert shares["1"].labelled == pytest.approx(0.5)
    assert shares["1"].reference == pytest.approx(0.2, abs=0.03)
    assert shares["1"].shift == pytest.approx(0.3, abs=0.03)
    assert shares["1"].predicted is None


def test_the_same_class_balance_is_not_flagged_and_json_labels_match_integer_classes() -> None:
    reference = build_reference_profile(FRAME, classification=True, target=class_target(0.2, 1000, 0)).target
    # 1.0 is how a JSON client may send class 1; it is the same class.
    labels = [1.0 if v else 0 for v in class_target(0.2, 400, seed=7)]
    result = label_drift(reference, labels, kind=OutputKind.CLASSIFICATION)
    assert result is not None and not result.drifted and result.drift is not None
    assert [share.label for share in result.priors] == ["0", "1"]


def test_no_feedback_or_a_single_class_says_why_label_drift_is_not_tested() -> None:
    reference = build_reference_profile(FRAME, classification=True, target=class_target(0.2, 1000, 0)).target
    none = label_drift(reference, [None, None], kind=OutputKind.CLASSIFICATION)
    assert none is not None and none.drift is None and not none.drifted
    assert none.note == "no labelled feedback in this range: label drift needs labels"
    single = label_drift(reference, [1] * 80, kind=OutputKind.CLASSIFICATION)
    assert single is not None and single.drift is None and not single.drifted
    assert single.note is not None and "every label in this range is '1' (80 labels)" in single.note
    assert {s.label: s.labelled for s in single.priors} == {"0": 0.0, "1": 1.0}


def test_a_profile_from_before_class_targets_or_without_a_target_says_so() -> None:
    old = build_reference_profile(FRAME, target=class_target(0.2, 1000, 0)).target  # binned as numbers
    result = label_drift(old, [0, 1], kind=OutputKind.CLASSIFICATION)
    assert result is not None and result.note is not None and "register the version again" in result.note
    missing = label_drift(None, [0, 1], kind=OutputKind.REGRESSION)
    assert missing is not None and missing.note is not None and "without a training target" in missing.note


def test_shifted_regression_labels_are_flagged_by_ks_and_same_ones_are_not() -> None:
    rng = np.random.default_rng(1)
    reference = build_reference_profile(FRAME, target=rng.normal(size=1000)).target
    moved = label_drift(reference, list(rng.normal(0.5, 1, size=300)), kind=OutputKind.REGRESSION)
    assert moved is not None and moved.drifted and moved.drift is not None and moved.drift.test == "ks"
    same = label_drift(reference, list(rng.normal(0, 1, size=300)), kind=OutputKind.REGRESSION)
    assert same is not None and not same.drifted
    words = label_drift(reference, ["high", "low"], kind=OutputKind.REGRESSION)
    assert (
        words is not None and words.note == "none of the 2 labels is a finite number: label drift needs numeric labels"
    )


def test_the_record_round_trips_through_json() -> None:
    reference = build_reference_profile(FRAME, classification=True, target=class_target(0.2, 1000, 0)).target
    result = label_drift(reference, [1] * 60 + [0] * 60, kind=OutputKind.CLASSIFICATION)
    assert result is not None
    data = json.loads(json.dumps(result.to_dict()))
    assert data["test"] == "chi2" and data["priors"][1]["shift"] == pytest.approx(
        data["priors"][1]["labelled"] - data["priors"][1]["reference"]
    )
    assert LabelDrift.from_fields(Fields(data, "label_drift")) == result
