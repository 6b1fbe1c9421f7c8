"""Summary statistics per feature, constant columns and duplicate rows: data quality a user reads first.

Everything here is read from mergeable profiles (``core.profile``), never from raw rows, so a live window
of a week costs what one of a minute does. Count, missing, mean, standard deviation, min and max are exact
(the profile keeps moments and extremes); quantiles are read from the histogram (see ``QUANTILE_METHOD``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.core.jsonsafe import finite_or_none
from shipyard.core.profile import CategoricalProfile, FeatureProfile, NumericProfile
from shipyard.monitoring.json_reading import Fields

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
QUANTILE_METHOD = (
    "from the profile's histogram: linear interpolation of the cumulative count inside the bin that holds the "
    "quantile; bins are the reference's training quantiles (100 for features), the outer bins bounded by the "
    "observed min and max, so a quantile is off by at most the width of the bin it falls in"
)
LIVE_DUPLICATES_METHOD = (
    "rows equal to an earlier row of the same background batch (about a second of one worker's traffic), "
    "summed over batches: duplicates across batches are not seen, so this is a lower bound"
)
OFFLINE_DUPLICATES_METHOD = "exact: rows with the same 64-bit hash of every column's value (missing equals missing)"


def _quantile_key(q: float) -> str:
    return f"p{round(q * 100):02d}"


@dataclass(frozen=True, slots=True)
class SummaryStats:
    """One feature on one side (reference or live). Numbers get moments and quantiles; categories the number
    of distinct levels and the most frequent one. A figure that cannot be computed is None, never NaN."""

    count: int
    missing: int
    mean: float | None = None
    sd: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float | None] = field(default_factory=dict)
    distinct: int | None = None
    top: str | None = None
    top_share: float | None = None
    constant: bool = False

    @property
    def missing_rate(self) -> float | None:
        total = self.count + self.missing
        return self.missing / total if total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "missing": self.missing,
            "mean": finite_or_none(self.mean),
            "sd": finite_or_none(self.sd),
            "min": finite_or_none(self.min),
            "max": finite_or_none(self.max),
            "quantiles": {k: finite_or_none(v) for k, v in self.quantiles.items()},
            "distinct": self.distinct,
            "top": self.top,
            "top_share": finite_or_none(self.top_share),
            "constant": self.constant,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> SummaryStats:
        return cls(
            count=fields.integer("count"),
            missing=fields.integer("missing"),
            mean=fields.optional_number("mean"),
            sd=fields.optional_number("sd"),
            min=fields.optional_number("min"),
            max=fields.optional_number("max"),
            quantiles=fields.optional_numbers_by_name("quantiles"),
            distinct=fields.optional_integer("distinct"),
            top=fields.optional_text("top"),
            top_share=fields.optional_number("top_share"),
            constant=fields.flag("constant"),
        )


@dataclass(frozen=True, slots=True)
class FeatureSummary:
    """A feature's summary statistics live (or in the current file) beside the reference's; ``note`` says
    what could not be computed and why."""

    feature: str
    kind: str
    live: SummaryStats | None
    reference: SummaryStats | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "live": self.live.to_dict() if self.live is not None else None,
            "reference": self.reference.to_dict() if self.reference is not None else None,
            "note": self.note,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> FeatureSummary:
        live, reference = fields.optional_section("live"), fields.optional_section("reference")
        return cls(
            feature=fields.text("feature"),
            kind=fields.text("kind"),
            live=SummaryStats.from_fields(live) if live is not None else None,
            reference=SummaryStats.from_fields(reference) if reference is not None else None,
            note=fields.optional_text("note"),
        )


@dataclass(frozen=True, slots=True)
class DuplicateRows:
    """Duplicate rows among ``rows`` checked, beside the reference's rate when it is known; ``method`` says
    how they were counted (exact offline, within each background batch live)."""

    rows: int
    duplicates: int
    reference_rows: int | None
    reference_duplicates: int | None
    method: str

    @property
    def rate(self) -> float | None:
        return self.duplicates / self.rows if self.rows else None

    @property
    def reference_rate(self) -> float | None:
        if self.reference_rows and self.reference_duplicates is not None:
            return self.reference_duplicates / self.reference_rows
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "duplicates": self.duplicates,
            "rate": self.rate,
            "reference_rows": self.reference_rows,
            "reference_duplicates": self.reference_duplicates,
            "reference_rate": self.reference_rate,
            "method": self.method,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> DuplicateRows:
        return cls(
            rows=fields.integer("rows"),
            duplicates=fields.integer("duplicates"),
            reference_rows=fields.optional_integer("reference_rows"),
            reference_duplicates=fields.optional_integer("reference_duplicates"),
            method=fields.text("method"),
        )


def summary_stats(profile: FeatureProfile) -> SummaryStats:
    """A profile's summary; quantiles as ``QUANTILE_METHOD`` says."""
    if isinstance(profile, CategoricalProfile):
        present = {level: n for level, n in profile.counts.items() if n > 0}
        count = sum(present.values())
        top = max(present.items(), key=lambda kv: kv[1]) if present else None
        return SummaryStats(
            count=count,
            missing=profile.missing,
            distinct=len(present),
            top=top[0] if top else None,
            top_share=top[1] / count if top and count else None,
            constant=len(present) == 1,
        )
    count = profile.count
    if count == 0:
        return SummaryStats(count=0, missing=profile.missing, quantiles={_quantile_key(q): None for q in QUANTILES})
    sd = math.sqrt(profile.variance) if count > 1 and math.isfinite(profile.variance) else None
    return SummaryStats(
        count=count,
        missing=profile.missing,
        mean=finite_or_none(profile.mean),
        sd=finite_or_none(sd),
        min=finite_or_none(profile.min),
        max=finite_or_none(profile.max),
        quantiles={_quantile_key(q): histogram_quantile(profile, q) for q in QUANTILES},
        constant=profile.min is not None and profile.min == profile.max,
    )


def histogram_quantile(profile: NumericProfile, q: float) -> float | None:
    """The q-quantile read from the binned counts (``QUANTILE_METHOD``); None without finite values."""
    counts = np.asarray(profile.counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0 or profile.min is None or profile.max is None:
        return None
    low, high = float(profile.min), float(profile.max)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    if low == high:
        return low
    # Bin i spans (edges[i-1], edges[i]]; the outer bins end at the observed extremes.
    bounds = np.clip(np.concatenate(([low], np.asarray(profile.edges, dtype=np.float64), [high])), low, high)
    target = q * total
    cumulative = np.cumsum(counts)
    i = int(np.searchsorted(cumulative, target, side="left"))
    i = min(i, counts.size - 1)
    before = cumulative[i - 1] if i > 0 else 0.0
    inside = counts[i]
    share = (target - before) / inside if inside > 0 else 0.0
    value = bounds[i] + (bounds[i + 1] - bounds[i]) * min(max(share, 0.0), 1.0)
    return finite_or_none(float(value))


def feature_summary(name: str, live: FeatureProfile | None, reference: FeatureProfile | None) -> FeatureSummary:
    """One feature's summary live and in the reference; a note when a side is missing or the kinds differ."""
    known = live if live is not None else reference
    kind = "numeric" if isinstance(known, NumericProfile) else "categorical"
    note = None
    if live is None:
        note = "no live values for this feature"
    elif reference is None:
        note = "no reference profile for this feature"
    elif isinstance(live, NumericProfile) != isinstance(reference, NumericProfile):
        note = "the reference and live values are of different kinds (numbers on one side, categories on the other)"
    live_stats = summary_stats(live) if live is not None else None
    if live_stats is not None and live_stats.count == 0 and live_stats.missing:
        note = f"all {live_stats.missing} values are missing: no statistics"
    return FeatureSummary(name, kind, live_stats, summary_stats(reference) if reference is not None else None, note)


def constant_features(profiles: dict[str, FeatureProfile]) -> tuple[str, ...]:
    """Features holding one value only (missing values aside): nothing to learn from, often a broken feed."""
    return tuple(name for name, profile in profiles.items() if summary_stats(profile).constant)


def all_missing_features(profiles: dict[str, FeatureProfile]) -> tuple[str, ...]:
    """Features with values counted but none present."""
    return tuple(name for name, p in profiles.items() if p.count == 0 and p.missing > 0)
