"""Rollout evidence is mergeable: merging workers' evidence equals counting all their requests in one place."""

from __future__ import annotations

import bisect
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.core.histograms import LATENCY_EDGES_MS, LatencyHistogram
from shipyard.core.profile import numeric_profile
from shipyard.errors import InvalidArgumentError
from shipyard.rollouts.evidence import (
    MISSING_KEY,
    TOP_DISAGREEMENTS,
    ArmEvidence,
    RewardMoments,
    ShadowComparison,
    prediction_keys,
)

request = st.tuples(st.floats(0, 1e6, allow_nan=False), st.booleans(), st.lists(st.sampled_from("abc"), max_size=3))


def _evidence(requests: list[tuple[float, bool, list[str]]]) -> ArmEvidence:
    evidence = ArmEvidence.empty()
    for latency_ms, error, keys in requests:
        evidence = evidence.record(latency_ms, error=error, predictions=keys)
    return evidence


def _bucket_width(value_ms: float) -> float:
    index = bisect.bisect_left(LATENCY_EDGES_MS, value_ms)
    return LATENCY_EDGES_MS[index] - (LATENCY_EDGES_MS[index - 1] if index else 0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(request, max_size=40), st.lists(request, max_size=40))
def test_merging_two_workers_evidence_equals_counting_both_at_once(a: list, b: list) -> None:
    merged, whole = _evidence(a).merge(_evidence(b)), _evidence(a + b)
    assert (merged.requests, merged.errors) == (whole.requests, whole.errors)
    assert merged.latency.counts == whole.latency.counts
    assert merged.latency.sum_ms == pytest.approx(whole.latency.sum_ms, rel=1e-9)
    assert merged.predictions == whole.predictions
    assert _evidence(b).merge(_evidence(a)).latency.counts == merged.latency.counts


def test_empty_evidence_is_the_identity_of_merge() -> None:
    evidence = _evidence([(3.0, False, ["a"]), (12.5, True, [])]).add_rewards([1.0, 0.0])
    assert ArmEvidence.empty().merge(evidence) == evidence
    assert evidence.merge(ArmEvidence.empty()) == evidence


def test_batch_evidence_equals_recording_requests_one_by_one() -> None:
    rng = np.random.default_rng(3)
    latencies, errors = rng.lognormal(3, 1, 500), rng.random(500) < 0.1
    keys = prediction_keys(rng.integers(0, 3, 500))
    batch = ArmEvidence.from_requests(latencies, errors=errors, predictions=keys)
    one_by_one = _evidence([(float(x), bool(e), [k]) for x, e, k in zip(latencies, errors, keys, strict=True)])
    assert batch.latency.counts == one_by_one.latency.counts
    assert (batch.requests, batch.errors, batch.predictions) == (500, int(errors.sum()), one_by_one.predictions)
    assert batch.error_rate == pytest.approx(errors.mean())


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_latency_quantile_is_within_one_bucket_of_the_exact_one(q: float) -> None:
    latencies = np.random.default_rng(7).lognormal(mean=3.0, sigma=0.8, size=20_000)
    evidence = ArmEvidence.from_requests(latencies)
    exact = float(np.percentile(latencies, q * 100))
    assert abs(evidence.latency_quantile(q) - exact) <= _bucket_width(exact)
    assert evidence.latency.mean_ms == pytest.approx(latencies.mean())


def test_latency_quantile_survives_merging_worker_histograms() -> None:
    latencies = np.random.default_rng(8).lognormal(mean=2.0, sigma=1.0, size=9_000)
    parts = [LatencyHistogram.of(chunk) for chunk in np.array_split(latencies, 3)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged == LatencyHistogram.of(latencies)
    exact = float(np.percentile(latencies, 99))
    assert abs(merged.quantile(0.99) - exact) <= _bucket_width(exact)


def test_latency_quantile_of_nothing_is_nan_and_bad_input_is_refused() -> None:
    assert math.isnan(LatencyHistogram.empty().quantile(0.99))
    with pytest.raises(InvalidArgumentError, match="in \\[0, 1\\]"):
        LatencyHistogram.of([1.0]).quantile(99)
    with pytest.raises(InvalidArgumentError, match="latency_ms"):
        ArmEvidence.empty().record(-1.0)
    with pytest.raises(InvalidArgumentError, match="latency_ms"):
        LatencyHistogram.of([1.0, float("nan")])
    with pytest.raises(InvalidArgumentError, match="error flags"):
        ArmEvidence.from_requests([1.0, 2.0], errors=[True])
    with pytest.raises(InvalidArgumentError, match="errors must be between"):
        ArmEvidence(requests=1, errors=2)


def test_latencies_beyond_the_last_bucket_keep_a_finite_quantile() -> None:
    histogram = LatencyHistogram.of([1e7, 2e7])
    assert math.isfinite(histogram.quantile(1.0)) and histogram.quantile(1.0) > LATENCY_EDGES_MS[-1]


def test_evidence_round_trips_through_json() -> None:
    evidence = _evidence([(3.0, False, ["yes"]), (250.0, True, []), (0.001, False, ["no", "yes"])])
    evidence = evidence.add_rewards([1.0, 0.0, 1.0])
    assert ArmEvidence.from_dict(json.loads(json.dumps(evidence.to_dict()))) == evidence


def test_evidence_from_other_latency_buckets_is_refused() -> None:
    data = ArmEvidence.empty().to_dict()
    data["latency"]["scheme"] = "linear:0..1000ms"
    with pytest.raises(InvalidArgumentError, match="linear:0..1000ms"):
        ArmEvidence.from_dict(data)


def test_rewards_merge_to_the_moments_of_all_feedback() -> None:
    rewards = np.random.default_rng(1).normal(2.0, 3.0, 1_000)
    evidence = ArmEvidence.empty().add_rewards(rewards[:400]).merge(ArmEvidence.empty().add_rewards(rewards[400:]))
    assert evidence.reward_n == 1_000
    assert evidence.rewards.mean == pytest.approx(rewards.mean())
    assert evidence.rewards.variance == pytest.approx(rewards.var(ddof=1))
    assert math.isnan(RewardMoments.of([1.0]).variance)


def test_numeric_prediction_keys_use_the_reference_profile_bins() -> None:
    values = np.random.default_rng(2).normal(size=2_000)
    reference = numeric_profile(values)
    keys = prediction_keys(values, edges=reference.edges)
    counts = [keys.count(str(i)) for i in range(len(reference.counts))]
    assert tuple(counts) == reference.counts
    assert prediction_keys([1.0, float("nan")], edges=(0.0,)) == ["1", MISSING_KEY]
    assert prediction_keys(np.array(["fraud", "ok"])) == ["fraud", "ok"]


def test_shadow_comparison_counts_class_agreement_and_keeps_the_flips() -> None:
    comparison = ShadowComparison.empty().record(
        "r1", ["a", "b", "a"], ["a", "a", "a"], latency_ms=5.0, classification=True
    )
    comparison = comparison.record("r2", ["a"], None, latency_ms=30.0, classification=True)
    assert (comparison.requests, comparison.errors, comparison.pairs) == (2, 1, 3)
    assert (comparison.class_pairs, comparison.class_agreements) == (3, 2)
    assert [(d.request_id, d.row, d.stable, d.candidate) for d in comparison.top] == [("r1", 1, "b", "a")]


def test_shadow_comparison_measures_score_and_regression_differences() -> None:
    scored = ShadowComparison.empty().record(
        "r1", [1, 0], [1, 1], latency_ms=1.0, classification=True, stable_scores=[0.9, 0.4], candidate_scores=[0.8, 0.6]
    )
    assert scored.numeric_pairs == 2 and scored.abs_diff_sum == pytest.approx(0.3)
    assert scored.top[0].label_differs and scored.top[0].row == 1
    regression = ShadowComparison.empty().record("r1", [1.0, 2.0], [1.5, 2.0], latency_ms=1.0, classification=False)
    assert (regression.abs_diff_sum, regression.abs_diff_max, len(regression.top)) == (0.5, 0.5, 1)
    with pytest.raises(InvalidArgumentError, match="must be numbers"):
        ShadowComparison.empty().record("r1", ["a"], ["b"], latency_ms=1.0, classification=False)


def test_shadow_drops_are_counted_by_reason_merged_across_workers_and_kept_through_json() -> None:
    server = ShadowComparison.of_dropped("shadow_queue_full", 7).merge(ShadowComparison.of_dropped("handoff_failed", 1))
    child = ShadowComparison.empty().record("r1", [1], [1], latency_ms=1.0, classification=True)
    child = child.merge(ShadowComparison.of_dropped("scoring_failed", 3))
    merged = server.merge(child).merge(ShadowComparison.of_dropped("shadow_queue_full", 2))
    assert merged.dropped == {"shadow_queue_full": 9, "handoff_failed": 1, "scoring_failed": 3}
    assert merged.dropped_total == 13 and merged.requests == 1  # a drop is not a comparison
    assert merged.record("r2", [0], [0], latency_ms=1.0, classification=True).dropped == merged.dropped
    assert ShadowComparison.from_dict(json.loads(json.dumps(merged.to_dict()))) == merged
    assert ShadowComparison.from_dict({"requests": 2}).dropped == {}  # rows written before drops were counted
    with pytest.raises(InvalidArgumentError, match="unknown shadow drop reason"):
        ShadowComparison.of_dropped("cosmic_rays", 1)


def test_shadow_top_disagreements_are_bounded_and_merge_like_the_whole() -> None:
    rng = np.random.default_rng(5)
    stable, candidate = rng.normal(size=200), rng.normal(size=200)
    workers = [ShadowComparison.empty(), ShadowComparison.empty()]
    whole = ShadowComparison.empty()
    for i in range(200):
        args = (f"req-{i}", [float(stable[i])], [float(candidate[i])])
        workers[i % 2] = workers[i % 2].record(*args, latency_ms=2.0, classification=False)
        whole = whole.record(*args, latency_ms=2.0, classification=False)
    merged = workers[0].merge(workers[1])
    assert len(merged.top) == TOP_DISAGREEMENTS
    assert merged.top == whole.top
    assert merged.top[0].abs_diff == pytest.approx(np.abs(stable - candidate).max())
    assert merged.abs_diff_sum == pytest.approx(whole.abs_diff_sum)
    assert ShadowComparison.from_dict(json.loads(json.dumps(merged.to_dict()))) == merged
