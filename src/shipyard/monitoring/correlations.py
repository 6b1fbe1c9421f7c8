"""Correlation changes between the tracked numeric features, reference against live.

The reference profile chooses up to ten numeric features at registration (the first ones in signature
order with any spread; see ``core.comoments.choose_features``) and keeps their co-moments; live windows keep
the same sums about the same shift, merged like every other count. A pair is reported when Pearson's r
moved by more than ``threshold`` (0.2 by default): marginal drift tests cannot see a relationship flip.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

from shipyard.core.comoments import CoMoments
from shipyard.core.jsonsafe import finite_or_none
from shipyard.monitoring.json_reading import Fields

CHANGE_THRESHOLD = 0.2
METHOD = (
    "Pearson's r over the rows where every tracked feature is a number, from mergeable sums of products; "
    "features: the first numeric ones in signature order with any spread in the reference (at most 10)"
)


@dataclass(frozen=True, slots=True)
class CorrelationChange:
    """One pair's r in the reference and live; ``change`` is live minus reference (None when either is
    undefined, e.g. a feature constant live)."""

    a: str
    b: str
    reference_r: float | None
    live_r: float | None

    @property
    def change(self) -> float | None:
        if self.reference_r is None or self.live_r is None:
            return None
        return self.live_r - self.reference_r

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "reference_r": finite_or_none(self.reference_r),
            "live_r": finite_or_none(self.live_r),
            "change": finite_or_none(self.change),
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> CorrelationChange:
        return cls(
            fields.text("a"), fields.text("b"), fields.optional_number("reference_r"), fields.optional_number("live_r")
        )


@dataclass(frozen=True, slots=True)
class CorrelationChanges:
    """The tracked features, the pairs whose r changed past ``threshold`` (largest change first), and how
    many rows each side's r rests on; ``note`` says why nothing could be compared when that is so."""

    features: tuple[str, ...]
    threshold: float
    reference_rows: int
    live_rows: int
    changed: tuple[CorrelationChange, ...]
    pairs: int
    undefined: tuple[str, ...] = ()
    note: str | None = None
    method: str = METHOD

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "threshold": self.threshold,
            "reference_rows": self.reference_rows,
            "live_rows": self.live_rows,
            "pairs": self.pairs,
            "changed": [c.to_dict() for c in self.changed],
            "undefined": list(self.undefined),
            "note": self.note,
            "method": self.method,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> CorrelationChanges:
        return cls(
            features=fields.texts("features"),
            threshold=fields.number("threshold"),
            reference_rows=fields.integer("reference_rows"),
            live_rows=fields.integer("live_rows"),
            pairs=fields.integer("pairs"),
            changed=tuple(CorrelationChange.from_fields(c) for c in fields.objects("changed")),
            undefined=fields.texts("undefined"),
            note=fields.optional_text("note"),
            method=fields.text("method"),
        )


def correlation_changes(
    reference: CoMoments | None, live: CoMoments | None, *, threshold: float = CHANGE_THRESHOLD
) -> CorrelationChanges | None:
    """Pairs whose r moved by more than ``threshold``; None when the reference tracks no correlations (a
    version registered without training data, or before this existed)."""
    if reference is None or len(reference.features) < 2:
        return None
    features = reference.features
    pairs = list(combinations(features, 2))
    if live is None or live.n == 0:
        return CorrelationChanges(
            features, threshold, reference.n, 0, (), len(pairs), note="no live rows with every tracked feature present"
        )
    if live.features != features:
        return CorrelationChanges(
            features,
            threshold,
            reference.n,
            live.n,
            (),
            len(pairs),
            note="the live window tracked other features than the reference; correlations not compared",
        )
    results = [CorrelationChange(a, b, reference.correlation(a, b), live.correlation(a, b)) for a, b in pairs]
    changed = sorted(
        (c for c in results if c.change is not None and abs(c.change) > threshold),
        key=lambda c: -abs(c.change or 0.0),
    )
    undefined = tuple(f"{c.a} ~ {c.b}" for c in results if c.change is None)
    note = None
    if live.n < 3:
        note = f"only {live.n} live rows with every tracked feature present: r needs at least 3"
    elif undefined:
        note = f"r undefined for {len(undefined)} pairs (a feature without spread on one side)"
    return CorrelationChanges(features, threshold, reference.n, live.n, tuple(changed), len(pairs), undefined, note)
