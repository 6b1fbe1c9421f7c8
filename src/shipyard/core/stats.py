"""Pure statistics behind rollout decisions: prediction shift, canary gates, A/B tests and shadow reports.

Every function takes merged evidence (``shipyard.core.evidence``) and returns a frozen result carrying the
numbers behind its decision, so the rollout history can show why a step was promoted, held or aborted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.evidence import ArmEvidence, Disagreement, RewardMoments, ShadowComparison
from shipyard.core.jsonsafe import finite_or_none
from shipyard.errors import InvalidArgumentError

# The relative error gate compares against max(stable rate, this floor): a stable version with no errors
# would otherwise make a single candidate error an infinite ratio.
ERROR_RATE_FLOOR = 0.005
# No A/B verdict, either way, before each arm has this many rewards: variance estimates are too rough below.
MIN_ARM_N = 30
# Default mSPRT mixing scale: tau = 0.1 x the pooled standard deviation, i.e. the test is most sensitive to
# effects around a tenth of a standard deviation, the size A/B tests on business metrics usually chase.
DEFAULT_TAU_SD = 0.1


# --- prediction shift -------------------------------------------------------------------------------------


def _aligned(
    expected: Mapping[str, float] | ArrayLike, actual: Mapping[str, float] | ArrayLike
) -> tuple[list[str] | None, np.ndarray, np.ndarray]:
    if isinstance(expected, Mapping) != isinstance(actual, Mapping):
        raise InvalidArgumentError("psi needs two mappings of counts by key, or two aligned sequences of counts")
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        keys = sorted(set(expected) | set(actual))
        e = np.array([expected.get(k, 0) for k in keys], dtype=np.float64)
        a = np.array([actual.get(k, 0) for k in keys], dtype=np.float64)
        return keys, e, a
    e, a = np.asarray(expected, dtype=np.float64).ravel(), np.asarray(actual, dtype=np.float64).ravel()
    if e.shape != a.shape:
        raise InvalidArgumentError(f"psi needs aligned bins; got {e.size} expected and {a.size} actual counts")
    return None, e, a


def _psi_terms(e: np.ndarray, a: np.ndarray, epsilon: float) -> np.ndarray:
    pe = np.maximum(e / e.sum(), epsilon)
    pa = np.maximum(a / a.sum(), epsilon)
    return (pa - pe) * np.log(pa / pe)


def psi(
    expected_counts: Mapping[str, float] | ArrayLike,
    actual_counts: Mapping[str, float] | ArrayLike,
    *,
    epsilon: float = 1e-4,
) -> float:
    """Population stability index of actual against expected counts (keys unioned, empty bins floored).

    Returns 0.0 when either side is empty: there is no evidence of a shift, and callers require minimum
    counts before reading it. Small samples inflate PSI (roughly (bins - 1) x (1/n_e + 1/n_a)).
    """
    if not epsilon > 0:
        raise InvalidArgumentError(f"epsilon must be > 0, got {epsilon!r}")
    _, e, a = _aligned(expected_counts, actual_counts)
    if not (np.isfinite(e).all() and np.isfinite(a).all()) or (e < 0).any() or (a < 0).any():
        raise InvalidArgumentError("psi counts must be finite and >= 0")
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0
    return float(_psi_terms(e, a, epsilon).sum())


# --- canary gates -----------------------------------------------------------------------------------------


class Verdict(StrEnum):
    """What the end-of-step analysis says: promote to the next step, hold for more traffic, or roll back."""

    PASS = "pass"
    HOLD = "hold"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class CanaryGates:
    """The limits a canary candidate must stay within at the end of every step; ``None`` turns a gate off."""

    max_error_rate: float | None = 0.05
    max_error_rate_ratio: float | None = 2.0
    max_latency_ratio: float | None = 1.5
    max_prediction_shift: float | None = 0.2
    min_requests: int = 100

    def __post_init__(self) -> None:
        if self.max_error_rate is not None and not 0.0 <= self.max_error_rate <= 1.0:
            raise InvalidArgumentError(f"max_error_rate must be a fraction in [0, 1], got {self.max_error_rate!r}")
        for name in ("max_error_rate_ratio", "max_latency_ratio"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InvalidArgumentError(f"{name} must be a number > 0 (e.g. 1.5), got {value!r}")
        shift = self.max_prediction_shift
        if shift is not None and not (math.isfinite(shift) and shift >= 0):
            raise InvalidArgumentError(f"max_prediction_shift must be a PSI >= 0 (e.g. 0.2), got {shift!r}")
        if isinstance(self.min_requests, bool) or not isinstance(self.min_requests, int) or self.min_requests < 1:
            raise InvalidArgumentError(f"min_requests must be a whole number >= 1, got {self.min_requests!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_error_rate": self.max_error_rate,
            "max_error_rate_ratio": self.max_error_rate_ratio,
            "max_latency_ratio": self.max_latency_ratio,
            "max_prediction_shift": self.max_prediction_shift,
            "min_requests": self.min_requests,
        }


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's figure against its limit: the evidence behind a canary decision, kept in the history."""

    name: str
    value: float | None
    limit: float | None
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": finite_or_none(self.value),
            "limit": self.limit,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class CanaryVerdict:
    """The end-of-step decision with every gate's result, so a rollback can be explained."""

    verdict: Verdict
    gates: tuple[GateResult, ...]
    message: str

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if not g.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "message": self.message, "gates": [g.to_dict() for g in self.gates]}


def _skipped(name: str, limit: float, why: str) -> GateResult:
    return GateResult(name, None, limit, True, f"skipped: {why}")


def _error_gates(stable: ArmEvidence, candidate: ArmEvidence, gates: CanaryGates) -> list[GateResult]:
    results: list[GateResult] = []
    rate = candidate.error_rate
    if gates.max_error_rate is not None:
        results.append(
            GateResult(
                "error_rate",
                rate,
                gates.max_error_rate,
                rate <= gates.max_error_rate,
                f"candidate error rate {rate:.2%} ({candidate.errors} of {candidate.requests} requests)",
            )
        )
    if gates.max_error_rate_ratio is not None:
        if stable.requests < gates.min_requests:
            results.append(
                _skipped(
                    "error_rate_ratio",
                    gates.max_error_rate_ratio,
                    f"stable served {stable.requests} of {gates.min_requests} requests",
                )
            )
        else:
            base = max(stable.error_rate, ERROR_RATE_FLOOR)
            floor_note = (
                f" (below the {ERROR_RATE_FLOOR:.1%} floor, compared with the floor)"
                if (stable.error_rate < ERROR_RATE_FLOOR)
                else ""
            )
            results.append(
                GateResult(
                    "error_rate_ratio",
                    rate / base,
                    gates.max_error_rate_ratio,
                    rate / base <= gates.max_error_rate_ratio,
                    f"candidate error rate {rate:.2%} vs stable {stable.error_rate:.2%}{floor_note}",
                )
            )
    return results


LATENCY_NOISE_MS = 1.0


def _latency_gate(stable: ArmEvidence, candidate: ArmEvidence, gates: CanaryGates) -> GateResult | None:
    limit = gates.max_latency_ratio
    if limit is None:
        return None
    if stable.latency.count < gates.min_requests:
        return _skipped("latency_ratio", limit, f"stable has {stable.latency.count} of {gates.min_requests} timings")
    if candidate.latency.count == 0:
        return _skipped("latency_ratio", limit, "candidate has no timed requests")
    stable_p99, candidate_p99 = stable.latency_quantile(0.99), candidate.latency_quantile(0.99)
    ratio = candidate_p99 / stable_p99 if stable_p99 > 0 else 1.0
    # Sub-millisecond latencies jitter by more than any ratio limit; below this gap, slower is not a finding.
    within_noise = candidate_p99 - stable_p99 <= LATENCY_NOISE_MS
    detail = f"candidate p99 {candidate_p99:.2f} ms vs stable p99 {stable_p99:.2f} ms"
    if within_noise and ratio > limit:
        detail += f" (a gap under {LATENCY_NOISE_MS:g} ms is within timing noise)"
    return GateResult("latency_ratio", ratio, limit, ratio <= limit or within_noise, detail)


def _shift_gate(stable: ArmEvidence, candidate: ArmEvidence, gates: CanaryGates) -> GateResult | None:
    limit = gates.max_prediction_shift
    if limit is None:
        return None
    stable_n, candidate_n = sum(stable.predictions.values()), sum(candidate.predictions.values())
    if stable_n < gates.min_requests:
        return _skipped("prediction_shift", limit, f"stable has {stable_n} of {gates.min_requests} predictions")
    if candidate_n == 0:
        return _skipped("prediction_shift", limit, "candidate has no predictions")
    keys, e, a = _aligned(stable.predictions, candidate.predictions)
    terms = _psi_terms(e, a, 1e-4)
    value = float(terms.sum())
    worst = int(np.argmax(terms))
    detail = (
        f"PSI of candidate predictions against stable's over {len(terms)} keys; most shifted "
        f"{keys[worst] if keys else worst!r}: {e[worst] / stable_n:.1%} -> {a[worst] / candidate_n:.1%}"
    )
    return GateResult("prediction_shift", value, limit, value <= limit, detail)


def canary_verdict(stable: ArmEvidence, candidate: ArmEvidence, gates: CanaryGates | None = None) -> CanaryVerdict:
    """Compare candidate with stable over one step's traffic: PASS promotes, HOLD waits, FAIL rolls back.

    Every gate is evaluated and reported, but with fewer than ``min_requests`` candidate requests the
    verdict is HOLD whatever the gates say: too little traffic is no evidence either way.
    """
    gates = gates or CanaryGates()
    enough = candidate.requests >= gates.min_requests
    results = [
        GateResult(
            "min_requests",
            float(candidate.requests),
            float(gates.min_requests),
            enough,
            f"candidate served {candidate.requests} of {gates.min_requests} requests needed before a verdict",
        ),
        *_error_gates(stable, candidate, gates),
    ]
    results += [g for g in (_latency_gate(stable, candidate, gates), _shift_gate(stable, candidate, gates)) if g]
    if not enough:
        return CanaryVerdict(
            Verdict.HOLD,
            tuple(results),
            f"hold: candidate served {candidate.requests} of {gates.min_requests} requests needed before a verdict",
        )
    failed = [g for g in results if not g.passed]
    if failed:
        reasons = "; ".join(f"{g.name} {g.value:.4g} > {g.limit:.4g} ({g.detail})" for g in failed)
        return CanaryVerdict(Verdict.FAIL, tuple(results), f"fail: {reasons}")
    return CanaryVerdict(
        Verdict.PASS, tuple(results), f"pass: every gate within its limit over {candidate.requests} candidate requests"
    )


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

    control: ArmSummary
    treatment: ArmSummary
    lift: float
    relative_lift: float | None
    lift_ci_low: float
    lift_ci_high: float
    p_value: float
    significant: bool
    winner: str | None
    message: str
    state: SequentialState

    def to_dict(self) -> dict[str, Any]:
        return {
            "control": self.control.to_dict(),
            "treatment": self.treatment.to_dict(),
            "lift": finite_or_none(self.lift),
            "relative_lift": finite_or_none(self.relative_lift),
            "lift_ci_low": finite_or_none(self.lift_ci_low),
            "lift_ci_high": finite_or_none(self.lift_ci_high),
            "p_value": self.p_value,
            "significant": self.significant,
            "winner": self.winner,
            "message": self.message,
            "state": self.state.to_dict(),
        }


def _moments(arm: ArmEvidence | RewardMoments) -> RewardMoments:
    return arm.rewards if isinstance(arm, ArmEvidence) else arm


def ab_analysis(
    control: ArmEvidence | RewardMoments,
    treatment: ArmEvidence | RewardMoments,
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
    c, t = _moments(control), _moments(treatment)
    state = previous or SequentialState()
    summaries = (
        arm_summary(c.n, c.sum, c.sum_sq, confidence=1 - alpha),
        arm_summary(t.n, t.sum, t.sum_sq, confidence=1 - alpha),
    )
    lift = t.mean - c.mean if c.n and t.n else math.nan
    relative = lift / c.mean if c.n and t.n and c.mean != 0 else None
    if c.n < min_n or t.n < min_n:
        message = f"too few rewards yet: control {c.n}, treatment {t.n}, need {min_n} per arm"
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
    winner: str | None = None
    if significant:
        # The interval excludes 0 on one side, unless it was just reset; then the current lift decides.
        treatment_higher = low > 0 if (low > 0 or high < 0) else lift > 0
        winner = "treatment" if treatment_higher == higher_is_better else "control"
    shown = f"lift {lift:+.4g}" + (f" ({relative:+.1%})" if relative is not None else "")
    if winner:
        message = f"{winner} wins: {shown}, always-valid p={state.p_value:.3g}"
    else:
        message = f"no difference yet: {shown}, always-valid p={state.p_value:.3g} after {c.n} + {t.n} rewards"
    return ABResult(*summaries, lift, relative, low, high, state.p_value, significant, winner, message, state)


# --- shadow -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """How a shadow candidate compares with stable on the same requests (figures are None when not measured)."""

    requests: int
    pairs: int
    agreement_rate: float | None
    mean_abs_diff: float | None
    max_abs_diff: float | None
    candidate_errors: int
    candidate_error_rate: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    disagreements: tuple[Disagreement, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "pairs": self.pairs,
            "agreement_rate": self.agreement_rate,
            "mean_abs_diff": self.mean_abs_diff,
            "max_abs_diff": self.max_abs_diff,
            "candidate_errors": self.candidate_errors,
            "candidate_error_rate": self.candidate_error_rate,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


def shadow_report(comparison: ShadowComparison) -> ShadowReport:
    """Summarise a merged shadow comparison for the rollout status and the report page."""
    timed = comparison.latency.count > 0
    return ShadowReport(
        requests=comparison.requests,
        pairs=comparison.pairs,
        agreement_rate=comparison.class_agreements / comparison.class_pairs if comparison.class_pairs else None,
        mean_abs_diff=comparison.abs_diff_sum / comparison.numeric_pairs if comparison.numeric_pairs else None,
        max_abs_diff=comparison.abs_diff_max if comparison.numeric_pairs else None,
        candidate_errors=comparison.errors,
        candidate_error_rate=comparison.errors / comparison.requests if comparison.requests else 0.0,
        latency_p50_ms=comparison.latency.quantile(0.5) if timed else None,
        latency_p99_ms=comparison.latency.quantile(0.99) if timed else None,
        disagreements=comparison.top,
    )
