"""Paired statistics for "is the candidate worse than the champion on the same rows?".

Both models score the same holdout, so their errors are correlated: a two-sample test would throw that pairing
away and need far more rows to see the same difference. Two paired tools are offered:

- McNemar's test on the discordant pairs (rows one model gets right and the other wrong), exact under the
  binomial and with the mid-p correction, which keeps the size near alpha without the exact test's conservatism;
- a paired bootstrap of the mean per-row loss difference, whose one-sided bound decides non-inferiority:
  "not worse by more than the margin" holds when the bound of the interval, not the observed difference, is
  within the margin.

Pure NumPy/SciPy, no clock and no I/O; seeds are explicit so a CI run gives the same verdict twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.jsonsafe import finite_or_none
from shipyard.errors import InvalidArgumentError

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
_BLOCK = 64  # resamples drawn at once: memory is block x rows indices, not resamples x rows


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """``candidate_only``: rows only the candidate gets right; ``champion_only``: rows only the champion does."""

    n: int
    candidate_only: int
    champion_only: int
    p_exact: float
    p_mid: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "candidate_only": self.candidate_only,
            "champion_only": self.champion_only,
            "p_exact": finite_or_none(self.p_exact),
            "p_mid": finite_or_none(self.p_mid),
        }


def _boolean(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgumentError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise InvalidArgumentError(f"{name} must hold only True/False (or 0/1) per row")
        array = array.astype(bool)
    return array


def mcnemar(candidate_correct: ArrayLike, champion_correct: ArrayLike) -> McNemarResult:
    """Two-sided exact and mid-p McNemar test of equal error rates on paired rows.

    Under the null each discordant row is the candidate's with probability 1/2, so the smaller discordant
    count is Binomial(b + c, 1/2); the exact p doubles its lower tail, the mid-p removes half the observed
    point's probability from it (Fagerland, Lydersen and Laake, 2013). With no discordant row both are 1.
    """
    from scipy.stats import binom

    cand = _boolean(candidate_correct, "candidate_correct")
    champ = _boolean(champion_correct, "champion_correct")
    if cand.size != champ.size:
        raise InvalidArgumentError(f"both models must be scored on the same rows; got {cand.size} and {champ.size}")
    b = int((cand & ~champ).sum())
    c = int((~cand & champ).sum())
    discordant, low = b + c, min(b, c)
    if discordant == 0:
        return McNemarResult(int(cand.size), b, c, 1.0, 1.0)
    tail = float(binom.cdf(low, discordant, 0.5))
    point = float(binom.pmf(low, discordant, 0.5))
    p_exact = min(1.0, 2.0 * tail)
    p_mid = min(1.0, 2.0 * (tail - 0.5 * point))
    return McNemarResult(int(cand.size), b, c, p_exact, p_mid)


@dataclass(frozen=True, slots=True)
class PairedInterval:
    """The mean of (candidate loss - champion loss) per row and its percentile bootstrap interval.

    Positive means the candidate is worse. ``upper`` is the one-sided ``confidence`` bound used for
    non-inferiority; ``lower`` the matching lower bound, so [lower, upper] is a ``2 * confidence - 1``
    two-sided interval.
    """

    n: int
    difference: float
    lower: float
    upper: float
    confidence: float
    resamples: int
    seed: int

    def not_worse_by_more_than(self, margin: float) -> bool:
        """Non-inferiority: the one-sided bound on how much worse the candidate is stays within ``margin``."""
        return self.upper <= margin

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "difference": finite_or_none(self.difference),
            "lower": finite_or_none(self.lower),
            "upper": finite_or_none(self.upper),
            "confidence": self.confidence,
            "resamples": self.resamples,
            "seed": self.seed,
        }


def paired_bootstrap(
    candidate_loss: ArrayLike,
    champion_loss: ArrayLike,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedInterval:
    """Resample rows (both models' losses together, so the pairing is kept) and bound the mean difference.

    Losses are per row and lower is better: 0/1 errors for a classifier (their mean difference is the accuracy
    lost), absolute errors for a regressor (the MAE added). Rows where either loss is not finite are refused
    by the caller's choice of loss; here they are an error, since dropping them would unpair the sample.
    """
    cand = np.asarray(candidate_loss, dtype=np.float64)
    champ = np.asarray(champion_loss, dtype=np.float64)
    if cand.ndim != 1 or cand.shape != champ.shape:
        raise InvalidArgumentError(
            f"both models must be scored on the same rows; got shapes {cand.shape} and {champ.shape}"
        )
    if cand.size < 2:
        raise InvalidArgumentError(f"a paired bootstrap needs at least 2 rows, got {cand.size}")
    if not (np.isfinite(cand).all() and np.isfinite(champ).all()):
        raise InvalidArgumentError("every row needs a finite loss for both models to be compared in pairs")
    if not 0.5 < confidence < 1.0:
        raise InvalidArgumentError(f"confidence must be between 0.5 and 1 (exclusive), got {confidence}")
    if not 100 <= resamples <= 1_000_000:
        raise InvalidArgumentError(f"resamples must be between 100 and 1000000, got {resamples}")
    diff = cand - champ
    n = int(diff.size)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, _BLOCK):
        stop = min(start + _BLOCK, resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    lower, upper = np.quantile(means, [1.0 - confidence, confidence])
    return PairedInterval(n, float(diff.mean()), float(lower), float(upper), confidence, resamples, seed)
