"""Pure statistics behind rollout decisions: prediction shift, canary gates, A/B tests and shadow reports.

Every function takes merged evidence (``shipyard.rollouts.evidence``) and returns a frozen result carrying the
numbers behind its decision, so the rollout history can show why a step was promoted, held or aborted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.core.histograms import aligned_counts, psi_terms
from shipyard.core.jsonsafe import finite_or_none
from shipyard.errors import InvalidArgumentError
from shipyard.rollouts.evidence import ArmEvidence, Disagreement, ShadowComparison
from shipyard.rollouts.spec import Outcome

# The relative error gate compares against max(stable rate, this floor): a stable version with no errors
# would otherwise make a single candidate error an infinite ratio.
ERROR_RATE_FLOOR = 0.005


# --- canary gates -----------------------------------------------------------------------------------------


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

    verdict: Outcome
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
    keys, e, a = aligned_counts(stable.predictions, candidate.predictions)
    terms = psi_terms(e, a, 1e-4)
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
            Outcome.HOLD,
            tuple(results),
            f"hold: candidate served {candidate.requests} of {gates.min_requests} requests needed before a verdict",
        )
    failed = [g for g in results if not g.passed]
    if failed:
        reasons = "; ".join(f"{g.name} {g.value:.4g} > {g.limit:.4g} ({g.detail})" for g in failed)
        return CanaryVerdict(Outcome.FAIL, tuple(results), f"fail: {reasons}")
    return CanaryVerdict(
        Outcome.PASS, tuple(results), f"pass: every gate within its limit over {candidate.requests} candidate requests"
    )


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
