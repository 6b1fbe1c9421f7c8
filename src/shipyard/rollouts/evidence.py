"""Mergeable evidence about the arms of a rollout: what serving workers count, what the controller merges.

Each worker counts the requests it served for one arm over one step into an ``ArmEvidence`` (and, for a
shadow rollout, the stable/candidate pairs it compared into a ``ShadowComparison``). The controller merges
the workers' and replicas' evidence by adding counts, then the pure analyses in ``shipyard.rollouts.gates``
decide. Every piece is fixed-size or bounded, so evidence is cheap to keep per step and to ship as JSON.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.histograms import LatencyHistogram
from shipyard.errors import InvalidArgumentError

MISSING_KEY = "__missing__"
TOP_DISAGREEMENTS = 20

Output = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class RewardMoments:
    """Sufficient statistics of a reward (or 0/1 label) for means, variances and A/B tests.

    Plain sums are enough for rewards of modest magnitude (0/1, ratings, small amounts); merging is addition.
    """

    n: int = 0
    sum: float = 0.0
    sum_sq: float = 0.0

    @classmethod
    def of(cls, rewards: ArrayLike) -> RewardMoments:
        values = np.asarray(rewards, dtype=np.float64).ravel()
        if values.size and not np.isfinite(values).all():
            raise InvalidArgumentError("rewards must be finite numbers; got a NaN or infinite value")
        return cls(int(values.size), float(values.sum()), float((values * values).sum()))

    def merge(self, other: RewardMoments) -> RewardMoments:
        return RewardMoments(self.n + other.n, self.sum + other.sum, self.sum_sq + other.sum_sq)

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Sample variance (n - 1), clamped at 0 against rounding; NaN below two rewards."""
        if self.n < 2:
            return math.nan
        return max(0.0, (self.sum_sq - self.sum * self.sum / self.n) / (self.n - 1))


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    merged = dict(a)
    for key, n in b.items():
        merged[key] = merged.get(key, 0) + n
    return merged


@dataclass(frozen=True, slots=True)
class ArmEvidence:
    """What one arm (stable or candidate) did over one step: requests, errors, latency, predictions, rewards.

    ``predictions`` counts prediction keys: class labels for classifiers, or bin indexes over fixed edges
    for numbers (see ``prediction_keys``), so the prediction distributions of two arms can be compared.
    """

    requests: int = 0
    errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    predictions: Mapping[str, int] = field(default_factory=dict)
    reward_n: int = 0
    reward_sum: float = 0.0
    reward_sum_sq: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.errors <= self.requests:
            raise InvalidArgumentError(f"errors must be between 0 and requests ({self.requests}), got {self.errors}")
        if self.reward_n < 0:
            raise InvalidArgumentError(f"reward_n must be >= 0, got {self.reward_n}")

    @classmethod
    def empty(cls) -> ArmEvidence:
        return cls()

    @classmethod
    def from_requests(
        cls,
        latencies_ms: ArrayLike,
        *,
        errors: ArrayLike | None = None,
        predictions: Iterable[str] = (),
    ) -> ArmEvidence:
        """Evidence of a batch of requests at once (vectorised); ``errors`` is one flag per request."""
        latency = LatencyHistogram.of(latencies_ms)
        flags = np.zeros(latency.count, dtype=bool) if errors is None else np.asarray(errors, dtype=bool).ravel()
        if flags.size != latency.count:
            raise InvalidArgumentError(
                f"got {latency.count} latencies but {flags.size} error flags; give one per request"
            )
        counts: dict[str, int] = {}
        for key in predictions:
            counts[key] = counts.get(key, 0) + 1
        return cls(latency.count, int(flags.sum()), latency, counts)

    def record(self, latency_ms: float, *, error: bool = False, predictions: Iterable[str] = ()) -> ArmEvidence:
        """This evidence plus one request; ``predictions`` are the request's prediction keys (one per row)."""
        counts = dict(self.predictions)
        for key in predictions:
            counts[key] = counts.get(key, 0) + 1
        return ArmEvidence(
            self.requests + 1,
            self.errors + int(bool(error)),
            self.latency.record(latency_ms),
            counts,
            self.reward_n,
            self.reward_sum,
            self.reward_sum_sq,
        )

    def add_rewards(self, rewards: ArrayLike) -> ArmEvidence:
        """This evidence plus rewards (or 0/1 labels) from feedback, which arrives after the requests."""
        moments = self.rewards.merge(RewardMoments.of(rewards))
        return ArmEvidence(
            self.requests, self.errors, self.latency, self.predictions, moments.n, moments.sum, moments.sum_sq
        )

    def merge(self, other: ArmEvidence) -> ArmEvidence:
        """Combine two workers' (or replicas', or steps') evidence for the same arm."""
        return ArmEvidence(
            self.requests + other.requests,
            self.errors + other.errors,
            self.latency.merge(other.latency),
            _add_counts(self.predictions, other.predictions),
            self.reward_n + other.reward_n,
            self.reward_sum + other.reward_sum,
            self.reward_sum_sq + other.reward_sum_sq,
        )

    @property
    def error_rate(self) -> float:
        """Errors per request; 0 with no requests, so gates must look at ``requests`` first."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def rewards(self) -> RewardMoments:
        return RewardMoments(self.reward_n, self.reward_sum, self.reward_sum_sq)

    def latency_quantile(self, q: float) -> float:
        """Estimated latency quantile in ms (e.g. q=0.99 for p99); NaN with no timed requests."""
        return self.latency.quantile(q)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency": self.latency.to_dict(),
            "predictions": dict(self.predictions),
            "reward_n": self.reward_n,
            "reward_sum": self.reward_sum,
            "reward_sum_sq": self.reward_sum_sq,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArmEvidence:
        return cls(
            int(data.get("requests", 0)),
            int(data.get("errors", 0)),
            LatencyHistogram.from_dict(data.get("latency", {})),
            {str(k): int(v) for k, v in data.get("predictions", {}).items()},
            int(data.get("reward_n", 0)),
            float(data.get("reward_sum", 0.0)),
            float(data.get("reward_sum_sq", 0.0)),
        )


def prediction_keys(values: ArrayLike, *, edges: Sequence[float] | None = None) -> list[str]:
    """Keys to count predictions under: labels as strings, or, given edges, the bin index of each number.

    Bins are (edges[i-1], edges[i]] as in the reference profile, so a reference profile's prediction edges
    can be reused; a missing (NaN) number is counted under ``__missing__``.
    """
    array = np.asarray(values)
    if edges is None:
        return [MISSING_KEY if v is None else str(v) for v in array.ravel().tolist()]
    numbers_ = array.astype(np.float64).ravel()
    bins = np.searchsorted(np.asarray(edges, dtype=np.float64), numbers_, side="left")
    return [str(b) if math.isfinite(x) else MISSING_KEY for b, x in zip(bins.tolist(), numbers_.tolist(), strict=True)]


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One row where stable and shadow candidate answered differently, kept as evidence for the report."""

    request_id: str
    row: int
    stable: Output
    candidate: Output
    abs_diff: float
    label_differs: bool = False

    def sort_key(self) -> tuple[bool, float, str, int]:
        """Class flips first, then the largest difference; ties by request id and row, so merging is order-free."""
        return (not self.label_differs, -self.abs_diff, self.request_id, self.row)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "row": self.row,
            "stable": self.stable,
            "candidate": self.candidate,
            "abs_diff": self.abs_diff,
            "label_differs": self.label_differs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Disagreement:
        return cls(
            str(data["request_id"]),
            int(data["row"]),
            data.get("stable"),
            data.get("candidate"),
            float(data["abs_diff"]),
            bool(data.get("label_differs", False)),
        )


def _top(rows: Iterable[Disagreement]) -> tuple[Disagreement, ...]:
    return tuple(sorted(rows, key=Disagreement.sort_key)[:TOP_DISAGREEMENTS])


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _plain(value: Any) -> Output:
    """NumPy scalars to Python ones, so disagreements stay JSON-able."""
    # Model outputs arrive untyped (Any): this is where they are taken to be the scalars a shadow compares.
    plain: Output = value.item() if isinstance(value, np.generic) else value
    return plain


SHADOW_DROP_REASONS: Mapping[str, str] = {
    "server_pending_full": "server's pending list full",
    "shadow_queue_full": "shadow process queue full (it scores slower than requests arrive)",
    "handoff_failed": "hand-off to the shadow process failed",
    "scoring_failed": "shadow process failed to score (candidate did not load, or the comparison broke)",
}
"""Why a sampled request was never compared, as counted in ``ShadowComparison.dropped``, and how to say it."""


@dataclass(frozen=True, slots=True)
class ShadowComparison:
    """Stable and shadow candidate compared row by row over the same requests; merging is addition.

    Classes are compared for agreement; numbers (regression outputs, or classifier scores when given) by
    absolute difference. Only the ``TOP_DISAGREEMENTS`` rows with the largest disagreement are kept.
    Sampled requests that never reached a comparison are counted in ``dropped`` by reason (a key of
    ``SHADOW_DROP_REASONS``), so "N shadowed" is never read without the ones lost on the way.
    """

    requests: int = 0
    errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    pairs: int = 0
    class_pairs: int = 0
    class_agreements: int = 0
    numeric_pairs: int = 0
    abs_diff_sum: float = 0.0
    abs_diff_max: float = 0.0
    top: tuple[Disagreement, ...] = ()
    dropped: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.dropped) - set(SHADOW_DROP_REASONS))
        if unknown:
            raise InvalidArgumentError(f"unknown shadow drop reason(s) {unknown}; known: {sorted(SHADOW_DROP_REASONS)}")

    @classmethod
    def empty(cls) -> ShadowComparison:
        return cls()

    @classmethod
    def of_dropped(cls, reason: str, n: int) -> ShadowComparison:
        """Only ``n`` sampled requests lost for ``reason``: merged into the step's comparison like any other."""
        if n < 0:
            raise InvalidArgumentError(f"a count of dropped shadow requests must be >= 0, got {n}")
        return cls(dropped={reason: n})

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def record(
        self,
        request_id: str,
        stable: Sequence[Any],
        candidate: Sequence[Any] | None,
        *,
        latency_ms: float,
        classification: bool,
        stable_scores: Sequence[float] | None = None,
        candidate_scores: Sequence[float] | None = None,
    ) -> ShadowComparison:
        """This comparison plus one request's rows; ``candidate=None`` means the candidate failed.

        A candidate answer with a different number of rows than stable's counts as a candidate error.
        ``classification`` comes from the signature's output kind, decided once, not guessed per value.
        """
        latency = self.latency.record(latency_ms)
        if candidate is None or len(candidate) != len(stable):
            return replace(self, requests=self.requests + 1, errors=self.errors + 1, latency=latency)
        scored = stable_scores is not None and candidate_scores is not None
        if scored and not (len(stable_scores or ()) == len(candidate_scores or ()) == len(stable)):
            raise InvalidArgumentError(f"scores must have one value per row ({len(stable)} rows)")
        class_pairs = agreements = numeric_pairs = 0
        diff_sum, diff_max = 0.0, self.abs_diff_max
        found: list[Disagreement] = []
        for row, (a, b) in enumerate(zip(stable, candidate, strict=True)):
            a, b = _plain(a), _plain(b)
            differs = False
            diff: float | None = None
            if classification:
                class_pairs += 1
                differs = str(a) != str(b)
                agreements += not differs
                if scored:
                    diff = abs(float(stable_scores[row]) - float(candidate_scores[row]))  # type: ignore[index]
            elif _is_number(a) and _is_number(b):
                diff = abs(float(a) - float(b))  # type: ignore[arg-type]
            else:
                raise InvalidArgumentError(
                    f"regression outputs must be numbers; row {row} of request {request_id!r} has {a!r} and {b!r}"
                )
            if diff is not None:
                numeric_pairs += 1
                diff_sum += diff
                diff_max = max(diff_max, diff)
            if differs or (diff or 0.0) > 0:
                rank = diff if diff is not None else 1.0
                found.append(Disagreement(request_id, row, a, b, rank, differs))
        return ShadowComparison(
            self.requests + 1,
            self.errors,
            latency,
            self.pairs + len(stable),
            self.class_pairs + class_pairs,
            self.class_agreements + agreements,
            self.numeric_pairs + numeric_pairs,
            self.abs_diff_sum + diff_sum,
            diff_max,
            _top([*self.top, *found]),
            self.dropped,
        )

    def merge(self, other: ShadowComparison) -> ShadowComparison:
        return ShadowComparison(
            self.requests + other.requests,
            self.errors + other.errors,
            self.latency.merge(other.latency),
            self.pairs + other.pairs,
            self.class_pairs + other.class_pairs,
            self.class_agreements + other.class_agreements,
            self.numeric_pairs + other.numeric_pairs,
            self.abs_diff_sum + other.abs_diff_sum,
            max(self.abs_diff_max, other.abs_diff_max),
            _top([*self.top, *other.top]),
            _add_counts(self.dropped, other.dropped),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency": self.latency.to_dict(),
            "pairs": self.pairs,
            "class_pairs": self.class_pairs,
            "class_agreements": self.class_agreements,
            "numeric_pairs": self.numeric_pairs,
            "abs_diff_sum": self.abs_diff_sum,
            "abs_diff_max": self.abs_diff_max,
            "top": [d.to_dict() for d in self.top],
            "dropped": dict(self.dropped),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShadowComparison:
        return cls(
            int(data.get("requests", 0)),
            int(data.get("errors", 0)),
            LatencyHistogram.from_dict(data.get("latency", {})),
            int(data.get("pairs", 0)),
            int(data.get("class_pairs", 0)),
            int(data.get("class_agreements", 0)),
            int(data.get("numeric_pairs", 0)),
            float(data.get("abs_diff_sum", 0.0)),
            float(data.get("abs_diff_max", 0.0)),
            _top(Disagreement.from_dict(d) for d in data.get("top", [])),
            {str(k): int(v) for k, v in data.get("dropped", {}).items() if str(k) in SHADOW_DROP_REASONS},
        )
