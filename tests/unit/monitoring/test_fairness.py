"""Fairness figures equal fairlearn's: demographic parity and equalized odds, per group and between groups."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.fairness import FairnessMetrics, fairness_metrics


def _json(result: FairnessMetrics) -> dict[str, Any]:
    return json.loads(json.dumps(result.to_dict(), allow_nan=False))


def _biased(seed: int, groups: list[str], n: int = 2_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and decisions where each group has its own base rate and its own error rates."""
    rng = np.random.default_rng(seed)
    sensitive = rng.choice(groups, size=n, p=np.linspace(1, 2, len(groups)) / np.linspace(1, 2, len(groups)).sum())
    g = np.searchsorted(sorted(groups), sensitive)
    labels = (rng.random(n) < 0.3 + 0.15 * g).astype(int)
    tpr, fpr = 0.85 - 0.1 * g, 0.1 + 0.08 * g
    predictions = (rng.random(n) < np.where(labels == 1, tpr, fpr)).astype(int)
    return labels, predictions, sensitive


@pytest.mark.parametrize("groups", [["a", "b"], ["x", "y", "z"]])
def test_differences_equal_fairlearns_with_two_and_three_groups(groups: list[str]) -> None:
    labels, predictions, sensitive = _biased(len(groups), groups)
    result = fairness_metrics(labels, predictions, sensitive, positive=1)
    assert result.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(labels, predictions, sensitive_features=sensitive)
    )
    assert result.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(labels, predictions, sensitive_features=sensitive)
    )
    assert (result.demographic_parity_difference or 0.0) > 0.05 and (result.equalized_odds_difference or 0.0) > 0.1
    assert len(result.groups) == len(groups)
    _json(result)


def test_per_group_figures_equal_fairlearns_metric_frame() -> None:
    labels, predictions, sensitive = _biased(4, ["p", "q", "r"])
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=labels,
        y_pred=predictions,
        sensitive_features=sensitive,
    ).by_group
    result = fairness_metrics(labels, predictions, sensitive, positive=1)
    for group in result.groups:
        row = frame.loc[group.group]
        assert group.count == int((sensitive == group.group).sum())
        assert group.selection_rate == pytest.approx(row["selection_rate"])
        assert group.true_positive_rate == pytest.approx(row["tpr"])
        assert group.false_positive_rate == pytest.approx(row["fpr"])
        assert group.positives == int(((sensitive == group.group) & (labels == 1)).sum())


def test_equal_treatment_gives_differences_near_zero() -> None:
    rng = np.random.default_rng(21)
    sensitive = rng.choice(["a", "b", "c"], 30_000)
    labels = (rng.random(sensitive.size) < 0.4).astype(int)
    predictions = (rng.random(sensitive.size) < np.where(labels == 1, 0.8, 0.1)).astype(int)
    result = fairness_metrics(labels, predictions, sensitive, positive=1)
    assert result.demographic_parity_difference is not None and result.demographic_parity_difference < 0.03
    assert result.equalized_odds_difference is not None and result.equalized_odds_difference < 0.03


def test_string_decisions_are_compared_to_the_named_positive() -> None:
    labels, predictions, sensitive = _biased(5, ["a", "b"])
    words = np.array(["denied", "approved"])
    result = fairness_metrics(words[labels], words[predictions], sensitive, positive="approved")
    assert result.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(labels, predictions, sensitive_features=sensitive)
    )
    assert _json(result)["positive"] == "approved"


def test_multiclass_decisions_are_scored_one_vs_rest() -> None:
    rng = np.random.default_rng(6)
    sensitive = rng.choice(["a", "b"], 1_000)
    labels, predictions = rng.integers(0, 3, 1_000), rng.integers(0, 3, 1_000)
    result = fairness_metrics(labels, predictions, sensitive, positive=2)
    assert result.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(labels == 2, predictions == 2, sensitive_features=sensitive)
    )


def test_group_without_positive_labels_matches_fairlearn_by_default_or_is_left_out_on_request() -> None:
    labels = np.array([1, 1, 0, 0, 0, 0, 0])
    predictions = np.array([1, 0, 1, 0, 1, 0, 0])
    sensitive = np.array(["a"] * 4 + ["b"] * 3)
    as_fairlearn = fairness_metrics(labels, predictions, sensitive, positive=1)
    assert as_fairlearn.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(labels, predictions, sensitive_features=sensitive)
    )
    assert as_fairlearn.true_positive_rate_difference == pytest.approx(0.5)  # b's undefined TPR counted as 0
    b = next(g for g in as_fairlearn.groups if g.group == "b")
    assert b.true_positive_rate is None and b.positives == 0
    assert "'b'" in as_fairlearn.notes["true_positive_rate"]

    skipped = fairness_metrics(labels, predictions, sensitive, positive=1, undefined_rates="skip")
    assert skipped.true_positive_rate_difference == 0.0
    assert skipped.equalized_odds_difference == pytest.approx(0.5 - 1 / 3)


def test_without_labels_only_demographic_parity_is_computed() -> None:
    labels, predictions, sensitive = _biased(7, ["a", "b", "c"])
    result = fairness_metrics(None, predictions, sensitive, positive=1)
    assert result.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(labels, predictions, sensitive_features=sensitive)
    )
    assert result.equalized_odds_difference is None and result.true_positive_rate_difference is None
    assert all(g.true_positive_rate is None and g.positives is None for g in result.groups)
    assert "labels" in result.notes
    _json(result)


def test_rows_with_missing_labels_count_for_parity_but_not_for_odds() -> None:
    labels, predictions, sensitive = _biased(8, ["a", "b"])
    partial = labels.astype(object)
    partial[::3] = None
    result = fairness_metrics(partial, predictions, sensitive, positive=1)
    known = np.ones(labels.size, dtype=bool)
    known[::3] = False
    assert result.labelled == int(known.sum())
    assert result.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(labels, predictions, sensitive_features=sensitive)
    )
    assert result.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(labels[known], predictions[known], sensitive_features=sensitive[known])
    )


def test_edge_cases_give_none_or_zero_without_crashing() -> None:
    empty = _json(fairness_metrics([], [], [], positive=1))
    assert empty["demographic_parity_difference"] is None and empty["groups"] == []
    one_group = fairness_metrics([1, 0], [1, 1], ["a", "a"], positive=1)
    assert one_group.demographic_parity_difference == 0.0 and one_group.equalized_odds_difference == 0.0
    mixed_groups = fairness_metrics(None, [1, 0, 1], [1, "x", None], positive=1)
    assert [g.count for g in mixed_groups.groups] == [1, 1, 1]
    _json(mixed_groups)


def test_a_positive_that_never_occurs_is_pointed_out() -> None:
    result = fairness_metrics([0, 1, 1], [0, 1, 1], ["a", "b", "b"], positive="1")
    assert result.demographic_parity_difference == 0.0
    assert "positive='1'" in result.notes["positive"]


def test_mismatched_lengths_and_policies_raise_errors_that_name_the_problem() -> None:
    with pytest.raises(InvalidArgumentError, match="sensitive and predictions"):
        fairness_metrics(None, [1, 0], ["a"], positive=1)
    with pytest.raises(InvalidArgumentError, match="labels and predictions"):
        fairness_metrics([1], [1, 0], ["a", "b"], positive=1)
    with pytest.raises(InvalidArgumentError, match="undefined_rates"):
        fairness_metrics(None, [1], ["a"], positive=1, undefined_rates="nan")  # type: ignore[arg-type]
