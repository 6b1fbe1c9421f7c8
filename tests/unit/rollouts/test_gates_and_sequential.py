"""Rollout statistics behave as claimed: PSI, canary gates, always-valid A/B tests and shadow reports."""

from __future__ import annotations

import json
import math
from itertools import pairwise

import numpy as np
import pytest
from scipy import stats as scipy_stats

from shipyard.core.endpoints import Arm
from shipyard.core.histograms import psi
from shipyard.errors import InvalidArgumentError
from shipyard.rollouts.evidence import ArmEvidence, RewardMoments, ShadowComparison, prediction_keys
from shipyard.rollouts.gates import (
    ERROR_RATE_FLOOR,
    CanaryGates,
    CanaryVerdict,
    GateResult,
    canary_verdict,
    shadow_report,
)
from shipyard.rollouts.sequential import SequentialState, ab_analysis, arm_summary, msprt_p_value
from shipyard.rollouts.spec import Outcome

EDGES = tuple(np.linspace(-2, 2, 9))


def _arm(seed: int, n: int, *, error_rate: float = 0.01, latency_scale: float = 1.0, shift: float = 0.0) -> ArmEvidence:
    rng = np.random.default_rng(seed)
    latencies = rng.lognormal(mean=3.0, sigma=0.5, size=n) * latency_scale
    keys = prediction_keys(rng.normal(shift, 1.0, n), edges=EDGES)
    return ArmEvidence.from_requests(latencies, errors=rng.random(n) < error_rate, predictions=keys)


def _gate(result: CanaryVerdict, name: str) -> GateResult:
    return next(g for g in result.gates if g.name == name)


# --- PSI ------------------------------------------------------------------------------------------------


def test_psi_of_a_sample_against_itself_is_zero_and_against_a_shifted_one_is_large() -> None:
    rng = np.random.default_rng(0)
    edges = np.quantile(rng.normal(size=50_000), np.linspace(0, 1, 11)[1:-1])

    def counts(sample: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(edges, sample), minlength=10)

    base, same, shifted = (
        counts(rng.normal(size=10_000)),
        counts(rng.normal(size=10_000)),
        counts(rng.normal(1, 1, 10_000)),
    )
    assert psi(base, base) == 0.0
    assert psi(base, same) < 0.01
    assert psi(base, shifted) > 0.5
    pe, pa = base / base.sum(), shifted / shifted.sum()
    assert psi(base, shifted) == pytest.approx(float(np.sum((pa - pe) * np.log(pa / pe))), rel=1e-12)


def test_psi_aligns_mappings_on_the_union_of_their_keys() -> None:
    expected, actual = {"a": 50, "b": 50}, {"b": 50, "c": 50}
    direct = psi([50, 50, 0], [0, 50, 50])
    assert psi(expected, actual) == pytest.approx(direct)
    assert psi(expected, actual) > 1.0
    assert psi({}, actual) == 0.0 and psi([0, 0], [1, 2]) == 0.0


def test_psi_refuses_misaligned_or_negative_counts() -> None:
    with pytest.raises(InvalidArgumentError, match="aligned"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(InvalidArgumentError, match="mappings"):
        psi({"a": 1}, [1])
    with pytest.raises(InvalidArgumentError, match=">= 0"):
        psi([1, -1], [1, 1])


# --- canary gates ---------------------------------------------------------------------------------------


def test_canary_passes_a_candidate_from_the_same_distribution() -> None:
    result = canary_verdict(_arm(1, 5_000), _arm(2, 1_000))
    assert result.verdict is Outcome.PASS, result.message
    assert {g.name for g in result.gates} == {
        "min_requests",
        "error_rate",
        "error_rate_ratio",
        "latency_ratio",
        "prediction_shift",
    }
    json.dumps(result.to_dict())


def test_canary_fails_when_candidate_error_rate_exceeds_gate() -> None:
    result = canary_verdict(_arm(1, 5_000), _arm(2, 1_000, error_rate=0.2))
    assert result.verdict is Outcome.FAIL
    assert {g.name for g in result.failed} == {"error_rate", "error_rate_ratio"}
    assert "error_rate" in result.message


def test_canary_fails_latency_gate_when_candidate_is_three_times_slower() -> None:
    result = canary_verdict(_arm(1, 5_000), _arm(2, 1_000, latency_scale=3.0))
    assert result.verdict is Outcome.FAIL
    assert [g.name for g in result.failed] == ["latency_ratio"]
    assert _gate(result, "latency_ratio").value == pytest.approx(3.0, rel=0.15)


def test_canary_fails_when_candidate_predictions_shift() -> None:
    result = canary_verdict(_arm(1, 5_000), _arm(2, 1_000, shift=1.0))
    assert [g.name for g in result.failed] == ["prediction_shift"]


def test_canary_holds_with_too_few_candidate_requests_even_if_they_look_bad() -> None:
    result = canary_verdict(_arm(1, 5_000), _arm(2, 40, error_rate=0.5), CanaryGates(min_requests=100))
    assert result.verdict is Outcome.HOLD
    assert "40 of 100" in result.message
    assert not _gate(result, "min_requests").passed


def test_relative_error_gate_uses_a_floor_when_stable_has_no_errors() -> None:
    gates = CanaryGates(max_error_rate=None, max_latency_ratio=None, max_prediction_shift=None)
    stable = ArmEvidence.from_requests(np.full(1_000, 10.0))
    slightly_worse = ArmEvidence.from_requests(np.full(1_000, 10.0), errors=np.arange(1_000) < 8)
    much_worse = ArmEvidence.from_requests(np.full(1_000, 10.0), errors=np.arange(1_000) < 15)
    assert canary_verdict(stable, slightly_worse, gates).verdict is Outcome.PASS
    failed = canary_verdict(stable, much_worse, gates)
    assert failed.verdict is Outcome.FAIL
    assert _gate(failed, "error_rate_ratio").value == pytest.approx(0.015 / ERROR_RATE_FLOOR)


def test_latency_and_ratio_gates_are_skipped_when_stable_has_too_little_traffic() -> None:
    result = canary_verdict(_arm(1, 20), _arm(2, 1_000, latency_scale=3.0))
    assert result.verdict is Outcome.PASS
    assert "skipped" in _gate(result, "latency_ratio").detail
    assert "skipped" in _gate(result, "error_rate_ratio").detail


@pytest.mark.parametrize(
    "bad",
    [
        {"max_error_rate": 1.5},
        {"max_error_rate_ratio": 0.0},
        {"max_latency_ratio": -1.0},
        {"max_prediction_shift": -0.1},
        {"min_requests": 0},
        {"min_requests": True},
    ],
)
def test_canary_gates_refuse_values_outside_their_range(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError, match=next(iter(bad))):
        CanaryGates(**bad)  # type: ignore[arg-type]


# --- A/B ------------------------------------------------------------------------------------------------

RUNS, BATCH, LOOKS = 300, 100, 50


def _bernoulli_paths(seed: int, p_control: float, p_treatment: float, runs: int = RUNS) -> tuple[np.ndarray, ...]:
    """Cumulative successes per run after each batch, for both arms (vectorised)."""
    rng = np.random.default_rng(seed)
    control = rng.binomial(BATCH, p_control, size=(runs, LOOKS)).cumsum(axis=1)
    treatment = rng.binomial(BATCH, p_treatment, size=(runs, LOOKS)).cumsum(axis=1)
    return control, treatment


def _sequential(control: np.ndarray, treatment: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
    """The look at which each run was first called significant (or -1), and the winner it named."""
    first, winners = np.full(len(control), -1), []
    for run in range(len(control)):
        state, winner = None, None
        for look in range(LOOKS):
            n = (look + 1) * BATCH
            c, t = float(control[run, look]), float(treatment[run, look])  # 0/1 rewards: sum_sq == sum
            result = ab_analysis(RewardMoments(n, c, c), RewardMoments(n, t, t), previous=state)
            state = result.state
            if result.significant:
                first[run], winner = look, result.winner
                break
        winners.append(winner)
    return first, winners


def test_ab_sequential_test_keeps_false_positives_near_alpha_when_checked_after_every_batch() -> None:
    control, treatment = _bernoulli_paths(11, 0.10, 0.10)
    first, _ = _sequential(control, treatment)
    sequential_fpr = float(np.mean(first >= 0))
    # The naive way: a fixed-horizon two-sample z-test, peeked at after every batch.
    n = BATCH * np.arange(1, LOOKS + 1)
    pc, pt = control / n, treatment / n
    z = (pt - pc) / np.sqrt(pc * (1 - pc) / n + pt * (1 - pt) / n)
    naive_fpr = float(np.mean((2 * scipy_stats.norm.sf(np.abs(z)) < 0.05).any(axis=1)))
    assert sequential_fpr <= 0.07
    assert naive_fpr > 0.15, "peeking at a fixed-horizon test should inflate false positives well past alpha"


def test_ab_sequential_test_finds_a_true_lift_and_names_the_treatment() -> None:
    control, treatment = _bernoulli_paths(12, 0.10, 0.13, runs=100)
    first, winners = _sequential(control, treatment)
    assert np.mean(first >= 0) >= 0.85
    assert {w for w in winners if w} == {Arm.CANDIDATE}


def test_ab_analysis_of_a_true_lift_reports_it() -> None:
    rng = np.random.default_rng(4)
    control = ArmEvidence.empty().add_rewards(rng.random(4_000) < 0.10)
    treatment = ArmEvidence.empty().add_rewards(rng.random(4_000) < 0.13)
    result = ab_analysis(control, treatment)
    assert result.significant and result.winner is Arm.CANDIDATE, result.message
    assert result.lift == pytest.approx(0.03, abs=0.01)
    assert result.relative_lift == pytest.approx(0.3, abs=0.12)
    assert result.lift_ci_low > 0 and result.p_value <= 0.05
    assert ab_analysis(treatment, control).winner is Arm.STABLE
    assert ab_analysis(control, treatment, higher_is_better=False).winner is Arm.STABLE
    json.dumps(result.to_dict())


def test_ab_analysis_says_no_difference_yet_and_waits_for_enough_rewards() -> None:
    few = ab_analysis(RewardMoments.of([1, 0, 1]), RewardMoments.of([0, 0, 1]))
    assert not few.significant and few.winner is None and "too few" in few.message
    rng = np.random.default_rng(9)
    same = ab_analysis(RewardMoments.of(rng.random(500) < 0.2), RewardMoments.of(rng.random(500) < 0.2))
    assert not same.significant and same.message.startswith("no difference yet")


def test_always_valid_p_value_never_rises_between_looks() -> None:
    control, treatment = _bernoulli_paths(13, 0.10, 0.10, runs=1)
    state, p_values = SequentialState(), []
    for look in range(LOOKS):
        n, c, t = (look + 1) * BATCH, float(control[0, look]), float(treatment[0, look])
        state = ab_analysis(RewardMoments(n, c, c), RewardMoments(n, t, t), previous=state).state
        p_values.append(state.p_value)
    assert all(b <= a for a, b in pairwise(p_values))
    assert state.looks == LOOKS
    assert SequentialState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_msprt_p_value_is_one_without_a_difference_and_small_with_a_clear_one() -> None:
    assert msprt_p_value(0.0, 1e-4, 0.03) == 1.0
    assert msprt_p_value(0.05, 1e-4, 0.03) < 1e-4
    with pytest.raises(InvalidArgumentError, match="tau"):
        ab_analysis(RewardMoments.of([1.0] * 40), RewardMoments.of([1.0] * 40), tau=0.0)


def test_arm_confidence_intervals_cover_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(21)
    normal = rng.normal(5.0, 2.0, size=(2_000, 40))
    bernoulli = (rng.random((2_000, 400)) < 0.3).astype(float)
    for samples, truth in ((normal, 5.0), (bernoulli, 0.3)):
        covered = 0
        for row in samples:
            summary = arm_summary(len(row), float(row.sum()), float((row * row).sum()))
            covered += summary.ci_low <= truth <= summary.ci_high
        assert 0.93 <= covered / len(samples) <= 0.97


def test_arm_summary_of_too_few_rewards_has_no_interval() -> None:
    assert math.isnan(arm_summary(0, 0.0, 0.0).mean)
    one = arm_summary(1, 3.0, 9.0)
    assert one.mean == 3.0 and math.isinf(one.ci_low)
    assert one.to_dict()["ci_low"] is None


# --- shadow ---------------------------------------------------------------------------------------------


def test_shadow_report_gives_agreement_differences_errors_and_latency() -> None:
    comparison = ShadowComparison.empty()
    for i in range(100):
        candidate = None if i % 25 == 0 else ["yes" if i % 10 else "no"]
        comparison = comparison.record(
            f"r{i}",
            ["yes"],
            candidate,
            latency_ms=10.0 + i,
            classification=True,
            stable_scores=[0.8],
            candidate_scores=None if candidate is None else [0.8 - (i % 10) / 100],
        )
    report = shadow_report(comparison)
    assert (report.requests, report.candidate_errors) == (100, 4)
    assert report.candidate_error_rate == pytest.approx(0.04)
    assert report.agreement_rate == pytest.approx(88 / 96)
    assert report.max_abs_diff == pytest.approx(0.09)
    assert report.latency_p50_ms == pytest.approx(60.0, rel=0.12)
    assert report.disagreements[0].label_differs and report.disagreements[0].candidate == "no"
    json.dumps(report.to_dict())


def test_shadow_report_of_nothing_leaves_unmeasured_figures_empty() -> None:
    report = shadow_report(ShadowComparison.empty())
    assert report.agreement_rate is None and report.mean_abs_diff is None and report.latency_p99_ms is None
