"""Paired statistics for validation gates: McNemar against SciPy's binomial test, bootstrap coverage by seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.paired import mcnemar, paired_bootstrap


def _pairs(b: int, c: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    cand = np.array([True] * b + [False] * c + [True] * both + [False] * neither)
    champ = np.array([False] * b + [True] * c + [True] * both + [False] * neither)
    return cand, champ


@pytest.mark.parametrize(("b", "c"), [(0, 5), (3, 9), (10, 10), (25, 12), (1, 0), (40, 61)])
def test_mcnemar_exact_p_equals_scipy_two_sided_binomial_test_on_discordant_pairs(b: int, c: int) -> None:
    cand, champ = _pairs(b, c, both=50, neither=7)
    result = mcnemar(cand, champ)
    assert (result.candidate_only, result.champion_only, result.n) == (b, c, b + c + 57)
    reference = binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue
    assert result.p_exact == pytest.approx(reference, rel=1e-12)
    # mid-p: half the observed point's probability taken off the doubled tail
    mid = 2 * (binom.cdf(min(b, c), b + c, 0.5) - 0.5 * binom.pmf(min(b, c), b + c, 0.5))
    assert result.p_mid == pytest.approx(min(1.0, mid), rel=1e-12)
    assert result.p_mid <= result.p_exact


def test_mcnemar_without_discordant_rows_finds_no_difference() -> None:
    cand, champ = _pairs(0, 0, both=30, neither=4)
    result = mcnemar(cand, champ)
    assert (result.p_exact, result.p_mid) == (1.0, 1.0)


def test_mcnemar_mid_p_keeps_its_size_near_alpha_under_the_null() -> None:
    """Many seeded same-accuracy pairs: the mid-p test rejects at about alpha, the exact one at most alpha."""
    rng = np.random.default_rng(7)
    exact = mid = 0
    trials = 2000
    for _ in range(trials):
        cand, champ = rng.random(300) < 0.8, rng.random(300) < 0.8
        result = mcnemar(cand, champ)
        exact += result.p_exact < 0.05
        mid += result.p_mid < 0.05
    # binomial sd of a 5% rate over 2000 trials is ~0.5 points: 0.02..0.075 is a wide, seeded band
    assert exact / trials <= 0.06
    assert 0.02 <= mid / trials <= 0.075


def test_mcnemar_refuses_unpaired_or_non_boolean_input() -> None:
    with pytest.raises(InvalidArgumentError, match="same rows"):
        mcnemar([True, False], [True])
    with pytest.raises(InvalidArgumentError, match="True/False"):
        mcnemar([0.5, 1.0], [1, 0])


def test_paired_bootstrap_upper_bound_covers_the_true_difference_at_its_confidence() -> None:
    """Seeded datasets of 500 rows with a known mean loss difference of 0.036: the one-sided 95% bound covers it
    about 95% of the time. 400 trials give a binomial sd of 1.1 points; the percentile bootstrap is known to be a
    little liberal (0.938 over 1,000 trials), so the band is 0.915..0.975."""
    rng = np.random.default_rng(11)
    covered = 0
    trials = 400
    for seed in range(trials):
        champion = rng.random(500) < 0.20  # champion's 0/1 error
        flip = rng.random(500)
        # candidate: the same errors less 2% of them, plus 5% new ones -> 0.05 * 0.8 - 0.02 * 0.2 = 0.036 worse
        candidate = np.where(champion, flip >= 0.02, flip < 0.05)
        interval = paired_bootstrap(candidate.astype(float), champion.astype(float), resamples=1000, seed=seed)
        covered += interval.upper >= 0.036
    assert 0.915 <= covered / trials <= 0.975


def test_paired_bootstrap_interval_brackets_the_observed_difference_and_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    cand, champ = rng.exponential(1.0, 500), rng.exponential(1.1, 500)
    first = paired_bootstrap(cand, champ, seed=5)
    again = paired_bootstrap(cand, champ, seed=5)
    assert first == again
    assert first.lower <= first.difference <= first.upper
    assert first.difference == pytest.approx(float((cand - champ).mean()))


def test_non_inferiority_is_decided_on_the_bound_not_the_observed_difference() -> None:
    """A candidate 0.75 points worse on 400 rows: the observed gap is inside a 1-point margin, the bound is not."""
    champion = np.zeros(400)
    candidate = np.zeros(400)
    candidate[:3] = 1.0  # 3 more errors in 400 rows: 0.0075 worse
    interval = paired_bootstrap(candidate, champion, seed=0)
    assert interval.difference == pytest.approx(0.0075)
    assert interval.difference <= 0.01
    assert not interval.not_worse_by_more_than(0.01)
    identical = paired_bootstrap(champion, champion, seed=0)
    assert identical.upper == 0.0
    assert identical.not_worse_by_more_than(0.01)


def test_paired_bootstrap_refuses_what_it_cannot_pair() -> None:
    with pytest.raises(InvalidArgumentError, match="same rows"):
        paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(InvalidArgumentError, match="finite"):
        paired_bootstrap([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(InvalidArgumentError, match="confidence"):
        paired_bootstrap([1.0, 2.0], [1.0, 2.0], confidence=1.5)
