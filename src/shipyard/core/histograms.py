"""What rollouts and monitoring both measure with: fixed bins, PSI and the latency histogram.

Both sub-domains compare distributions bucket by bucket; the buckets are defined once here, so a canary's
latency gate and a monitoring window read the same edges and a stored histogram means the same everywhere.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shipyard.errors import InvalidArgumentError

# Same 20 bins as the serving windows' confidence histogram (``core.window``), so stored windows feed the
# label-free estimate directly.
CONFIDENCE_BINS = 20


def bin_index(values: NDArray[np.float64], bins: int) -> NDArray[np.intp]:
    """Uniform bins on [0, 1]: bin i holds [i/bins, (i+1)/bins), the last one also holds 1.0."""
    return np.clip(np.floor(values * bins).astype(np.intp), 0, bins - 1)


def check_bins(bins: int, name: str = "bins") -> None:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise InvalidArgumentError(f"{name} must be a whole number >= 1 (e.g. 10), got {bins!r}")


# --- prediction shift -------------------------------------------------------------------------------------


def aligned_counts(
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


def psi_terms(e: np.ndarray, a: np.ndarray, epsilon: float) -> np.ndarray:
    # NumPy's stubs type a dtype-less array's sum as Any; the shares are float64 arrays.
    pe: NDArray[np.float64] = np.maximum(e / e.sum(), epsilon)
    pa: NDArray[np.float64] = np.maximum(a / a.sum(), epsilon)
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
    _, e, a = aligned_counts(expected_counts, actual_counts)
    if not (np.isfinite(e).all() and np.isfinite(a).all()) or (e < 0).any() or (a < 0).any():
        raise InvalidArgumentError("psi counts must be finite and >= 0")
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0
    return float(psi_terms(e, a, epsilon).sum())


# Latency buckets: 20 per decade from 0.01 ms to 100 s. Each bucket is ~12% wide, so a p99 estimated after
# merging is within ~12% of the exact one, and a histogram is 142 counts however many requests it holds.
_PER_DECADE = 20
LATENCY_EDGES_MS: tuple[float, ...] = tuple(
    10.0 ** (k / _PER_DECADE) for k in range(-2 * _PER_DECADE, 5 * _PER_DECADE + 1)
)
LATENCY_SCHEME = "log10/20:0.01..100000ms"
_LATENCY_BUCKETS = len(LATENCY_EDGES_MS) + 1
# The overflow bucket (> 100 s) is given one more bucket's width, so quantiles there stay finite.
_OVERFLOW_UPPER_MS: float = LATENCY_EDGES_MS[-1] * 10.0 ** (1 / _PER_DECADE)


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Latencies in fixed log-spaced buckets (bucket i holds (edge[i-1], edge[i]]), so quantiles survive merging."""

    counts: tuple[int, ...] = (0,) * _LATENCY_BUCKETS
    sum_ms: float = 0.0

    def __post_init__(self) -> None:
        if len(self.counts) != _LATENCY_BUCKETS:
            raise InvalidArgumentError(
                f"a latency histogram has {_LATENCY_BUCKETS} buckets ({LATENCY_SCHEME}), got {len(self.counts)}"
            )

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def mean_ms(self) -> float:
        """Mean latency; NaN when nothing was counted, so callers must check ``count``."""
        return self.sum_ms / self.count if self.count else math.nan

    @classmethod
    def empty(cls) -> LatencyHistogram:
        return cls()

    @classmethod
    def of(cls, latencies_ms: ArrayLike) -> LatencyHistogram:
        """Count many latencies at once (vectorised), e.g. a worker's batch or a test's sample."""
        values = np.asarray(latencies_ms, dtype=np.float64).ravel()
        if values.size and not (np.isfinite(values).all() and (values >= 0).all()):
            raise InvalidArgumentError("latency_ms must be finite and >= 0; got a NaN, infinite or negative value")
        buckets = np.bincount(np.searchsorted(LATENCY_EDGES_MS, values, side="left"), minlength=_LATENCY_BUCKETS)
        return cls(tuple(int(c) for c in buckets), float(values.sum()))

    def record(self, latency_ms: float) -> LatencyHistogram:
        """Count one latency; bisect rather than NumPy, since this runs once per request."""
        if not (math.isfinite(latency_ms) and latency_ms >= 0):
            raise InvalidArgumentError(f"latency_ms must be finite and >= 0, got {latency_ms!r}")
        index = bisect.bisect_left(LATENCY_EDGES_MS, latency_ms)
        counts = list(self.counts)
        counts[index] += 1
        return LatencyHistogram(tuple(counts), self.sum_ms + latency_ms)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        return LatencyHistogram(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)), self.sum_ms + other.sum_ms
        )

    def quantile(self, q: float) -> float:
        """The q-quantile, interpolating linearly inside its bucket; NaN when nothing was counted."""
        if not 0.0 <= q <= 1.0:
            raise InvalidArgumentError(f"quantile q must be in [0, 1], got {q!r}")
        total = self.count
        if total == 0:
            return math.nan
        rank = q * total
        seen = 0
        for index, n in enumerate(self.counts):
            if n and seen + n >= rank:
                lower = LATENCY_EDGES_MS[index - 1] if index > 0 else 0.0
                upper = LATENCY_EDGES_MS[index] if index < len(LATENCY_EDGES_MS) else _OVERFLOW_UPPER_MS
                return lower + (upper - lower) * (rank - seen) / n
            seen += n
        return _OVERFLOW_UPPER_MS  # unreachable for q <= 1; kept so float rounding can never fall through

    def to_dict(self) -> dict[str, Any]:
        """Sparse counts keyed by bucket index: most buckets are empty, and JSON keys are strings."""
        return {
            "scheme": LATENCY_SCHEME,
            "counts": {str(i): n for i, n in enumerate(self.counts) if n},
            "sum_ms": self.sum_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        scheme = data.get("scheme", LATENCY_SCHEME)
        if scheme != LATENCY_SCHEME:
            raise InvalidArgumentError(
                f"latency histogram uses buckets {scheme!r}, but this Shipyard reads only {LATENCY_SCHEME!r}"
            )
        counts = [0] * _LATENCY_BUCKETS
        for key, n in data.get("counts", {}).items():
            index = int(key)
            if not 0 <= index < _LATENCY_BUCKETS:
                raise InvalidArgumentError(f"latency bucket {index} is outside 0..{_LATENCY_BUCKETS - 1}")
            counts[index] = int(n)
        return cls(tuple(counts), float(data.get("sum_ms", 0.0)))
