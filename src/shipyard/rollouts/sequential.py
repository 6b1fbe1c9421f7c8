"""The A/B test's statistics: per-arm summaries and an always-valid sequential test (mSPRT).

An A/B rollout looks at its rewards every tick; a fixed-horizon test read that often would declare false
winners. The mixture sequential probability ratio test keeps its error rate however often it is read, and
its state is small and JSON-able, so it is carried from one analysis to the next on the rollout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.endpoints import Arm
from shipyard.core.jsonsafe import finite_or_none
from shipyard.errors import InvalidArgumentError
from shipyard.rollouts.evidence import ArmEvidence, RewardMoments

# No A/B verdict, either way, before each arm has this many rewards: variance estimates are too rough below.
MIN_ARM_N = 30
# Default mSPRT mixing scale: tau = 0.1 x the pooled standard deviation, i.e. the test is most sensitive to
# effects around a tenth of a standard deviation, the size A/B tests on business metrics usually chase.
DEFAULT_TAU_SD = 0.1


# --- A/B tests --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """One arm's mean reward with a confidence interval (NaN figures when the arm has too few rewards)."""

    n: int
    mean: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": finite_or_none(self.mean),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
        }


@lru_cache(maxsize=8192)
def _t_quantile(confidence: float, df: int) -> float:
    """Cached: the controller asks for the same few degrees of freedom on every look."""
    from scipy import stats as scipy_stats  # imported when first needed: it costs the CLI half a second

    return float(scipy_stats.t.ppf((1 + confidence) / 2, df))


def arm_summary(n: int, total: float, total_sq: float, *, confidence: float = 0.95) -> ArmSummary:
    """Mean and t-based confidence interval from the sufficient statistics; 0/1 rewards work the same way."""
    if not 0 < confidence < 1:
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {confidence!r}")
    moments = RewardMoments(n, total, total_sq)
    if n < 2:
        return ArmSummary(n, moments.mean, -math.inf if n else math.nan, math.inf if n else math.nan)
    half = _t_quantile(confidence, n - 1) * math.sqrt(moments.variance / n)
    return ArmSummary(n, moments.mean, moments.mean - half, moments.mean + half)


@dataclass(frozen=True, slots=True)
class SequentialState:
    """What an always-valid test carries between looks: the running minimum p-value and the running
    intersection of the confidence sequence for the lift. Store it with the rollout and pass it back."""

    p_value: float = 1.0
    looks: int = 0
    lift_low: float = -math.inf
    lift_high: float = math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_value": self.p_value,
            "looks": self.looks,
            "lift_low": finite_or_none(self.lift_low),
            "lift_high": finite_or_none(self.lift_high),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SequentialState:
        low, high = data.get("lift_low"), data.get("lift_high")
        return cls(
            float(data.get("p_value", 1.0)),
            int(data.get("looks", 0)),
            -math.inf if low is None else float(low),
            math.inf if high is None else float(high),
        )


def msprt_log_lr(theta_hat: ArrayLike, variance: ArrayLike, tau: ArrayLike) -> np.ndarray:
    """Log of the normal-mixture likelihood ratio for H0: difference = 0 (Johari, Pekelis & Walsh).

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 theta^2 / (2 V (V + tau^2))), where V is the variance of the
    estimated difference; vectorised so simulations can run many looks at once.
    """
    theta, v, t2 = np.asarray(theta_hat, float), np.asarray(variance, float), np.square(np.asarray(tau, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lr = 0.5 * np.log(v / (v + t2)) + t2 * theta**2 / (2 * v * (v + t2))
    # No variance at all: two constant arms. Equal means carry no evidence; different ones are certain.
    return np.where(v > 0, np.where(t2 > 0, log_lr, 0.0), np.where(theta == 0, 0.0, np.inf))


def msprt_p_value(theta_hat: float, variance: float, tau: float) -> float:
    """This look's mSPRT p-value, min(1, 1/Lambda); the always-valid p-value is its running minimum."""
    return float(min(1.0, math.exp(-float(msprt_log_lr(theta_hat, variance, tau)))))


def _confidence_sequence(theta_hat: float, variance: float, tau: float, alpha: float) -> tuple[float, float]:
    """The lifts the mSPRT would not reject at this look: theta_hat +- the mixture boundary."""
    if variance <= 0 or tau <= 0:
        return (theta_hat, theta_hat) if variance <= 0 else (-math.inf, math.inf)
    t2 = tau * tau
    half = math.sqrt(variance * (variance + t2) / t2 * (math.log((variance + t2) / variance) - 2 * math.log(alpha)))
    return theta_hat - half, theta_hat + half


@dataclass(frozen=True, slots=True)
class ABResult:
    """An A/B analysis at one look: both arms, the lift, the always-valid test, and the call it makes."""

    stable: ArmSummary
    candidate: ArmSummary
    lift: float
    relative_lift: float | None
    lift_ci_low: float
    lift_ci_high: float
    p_value: float
    significant: bool
    winner: Arm | None
    message: str
    state: SequentialState

    def to_dict(self) -> dict[str, Any]:
        return {
            "stable": self.stable.to_dict(),
            "candidate": self.candidate.to_dict(),
            "lift": finite_or_none(self.lift),
            "relative_lift": finite_or_none(self.relative_lift),
            "lift_ci_low": finite_or_none(self.lift_ci_low),
            "lift_ci_high": finite_or_none(self.lift_ci_high),
            "p_value": self.p_value,
            "significant": self.significant,
            "winner": self.winner.value if self.winner is not None else None,
            "message": self.message,
            "state": self.state.to_dict(),
        }


def _moments(arm: ArmEvidence | RewardMoments) -> RewardMoments:
    return arm.rewards if isinstance(arm, ArmEvidence) else arm


def ab_analysis(
    stable: ArmEvidence | RewardMoments,
    candidate: ArmEvidence | RewardMoments,
    *,
    alpha: float = 0.05,
    tau: float | None = None,
    previous: SequentialState | None = None,
    min_n: int = MIN_ARM_N,
    higher_is_better: bool = True,
) -> ABResult:
    """Compare mean rewards with a mixture SPRT, so checking after every batch keeps false positives near alpha.

    Pass the previous look's ``state`` back as ``previous``: the p-value is the running minimum over looks
    and the lift's interval the running intersection. ``tau`` defaults to ``DEFAULT_TAU_SD`` x the pooled
    standard deviation. V, the variance of the difference, is s_c^2/n_c + s_t^2/n_t (robust to unequal arms).
    """
    if not 0 < alpha < 1:
        raise InvalidArgumentError(f"alpha must be in (0, 1), got {alpha!r}")
    if tau is not None and not (math.isfinite(tau) and tau > 0):
        raise InvalidArgumentError(f"tau must be a number > 0 (the mixing scale, in reward units), got {tau!r}")
    if min_n < 2:
        raise InvalidArgumentError(f"min_n must be at least 2 rewards per arm, got {min_n!r}")
    c, t = _moments(stable), _moments(candidate)
    state = previous or SequentialState()
    summaries = (
        arm_summary(c.n, c.sum, c.sum_sq, confidence=1 - alpha),
        arm_summary(t.n, t.sum, t.sum_sq, confidence=1 - alpha),
    )
    lift = t.mean - c.mean if c.n and t.n else math.nan
    relative = lift / c.mean if c.n and t.n and c.mean != 0 else None
    if c.n < min_n or t.n < min_n:
        message = f"too few rewards yet: stable {c.n}, candidate {t.n}, need {min_n} per arm"
        return ABResult(
            *summaries, lift, relative, state.lift_low, state.lift_high, state.p_value, False, None, message, state
        )
    variance = c.variance / c.n + t.variance / t.n
    pooled_sd = math.sqrt(((c.n - 1) * c.variance + (t.n - 1) * t.variance) / (c.n + t.n - 2))
    mixing = tau if tau is not None else DEFAULT_TAU_SD * pooled_sd
    low, high = _confidence_sequence(lift, variance, mixing, alpha)
    low, high = max(state.lift_low, low), min(state.lift_high, high)
    if low > high:  # the running intersection emptied: the model is off; trust this look's interval alone
        low, high = _confidence_sequence(lift, variance, mixing, alpha)
    state = SequentialState(min(state.p_value, msprt_p_value(lift, variance, mixing)), state.looks + 1, low, high)
    significant = state.p_value <= alpha
    winner: Arm | None = None
    if significant:
        # The interval excludes 0 on one side, unless it was just reset; then the current lift decides.
        candidate_higher = low > 0 if (low > 0 or high < 0) else lift > 0
        winner = Arm.CANDIDATE if candidate_higher == higher_is_better else Arm.STABLE
    shown = f"lift {lift:+.4g}" + (f" ({relative:+.1%})" if relative is not None else "")
    if winner:
        message = f"{winner.value} wins: {shown}, always-valid p={state.p_value:.3g}"
    else:
        message = f"no difference yet: {shown}, always-valid p={state.p_value:.3g} after {c.n} + {t.n} rewards"
    return ABResult(*summaries, lift, relative, low, high, state.p_value, significant, winner, message, state)
