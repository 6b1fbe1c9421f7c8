"""The reward rate: mean business feedback with a confidence interval (Wilson for 0/1 rewards, t otherwise)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from shipyard.core.jsonsafe import finite_or_none
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.labels import (
    Numbers,
    as_numbers,
)

# --- reward rate ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RewardSummary:
    """Mean reward with a confidence interval; ``interval`` names the method (``wilson`` for 0/1 rewards,
    ``t`` otherwise) and is None when there are too few rewards for one."""

    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    interval: str | None
    missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": finite_or_none(self.mean),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
            "confidence": self.confidence,
            "interval": self.interval,
            "missing": self.missing,
        }


def _wilson(successes: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval: unlike mean ± t·se it stays inside [0, 1] and is not zero-width at 0% or 100%."""
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    rate = successes / n
    denominator = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def reward_summary(rewards: Numbers, *, confidence: float = 0.95) -> RewardSummary:
    """Mean reward and its confidence interval; missing (non-finite) rewards are counted, not used."""
    if not 0 < confidence < 1:
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {confidence!r}")
    values = as_numbers(rewards, "rewards")
    keep = np.isfinite(values)
    values, missing = values[keep], int((~keep).sum())
    n = int(values.size)
    if n == 0:
        return RewardSummary(0, None, None, None, confidence, None, missing)
    mean = float(values.mean())
    if np.isin(values, (0.0, 1.0)).all():
        low, high = _wilson(float(values.sum()), n, confidence)
        return RewardSummary(n, mean, low, high, confidence, "wilson", missing)
    if n < 2:
        return RewardSummary(n, mean, None, None, confidence, None, missing)
    from scipy import stats as scipy_stats  # imported when first needed: slow to import, rarely used

    half = float(scipy_stats.t.ppf((1 + confidence) / 2, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    return RewardSummary(n, mean, mean - half, mean + half, confidence, "t", missing)
