"""Outlier scores per window, and the report section built from them.

A window keeps three mergeable things: rows scored, rows above the version's threshold, and a fixed-size
histogram of score / threshold (``RATIO_EDGES``), so windows of one version merge by adding counts whatever
their traffic, and the report can say how far past the threshold the outliers lie.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.core.outlier_model import OutlierModel
from shipyard.monitoring.json_reading import Fields

RATIO_EDGES = (0.25, 0.5, 0.75, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Upper edges of the score / threshold bins (each bin ``(previous, edge]``; the last bin is open): a ratio of
exactly 1.0 is at the threshold, not above it, like the verdict."""
_ABOVE = RATIO_EDGES.index(1.0) + 1


@dataclass(frozen=True, slots=True)
class OutlierCounts:
    """Outlier scores over one window: rows scored, rows above the threshold, the score / threshold histogram."""

    scored: int = 0
    above: int = 0
    histogram: tuple[int, ...] = (0,) * (len(RATIO_EDGES) + 1)

    @classmethod
    def of(cls, scores: np.ndarray, threshold: float) -> OutlierCounts:
        """Count a batch of scores against the version's threshold (a threshold of 0: any positive score)."""
        values = np.asarray(scores, dtype=np.float64)
        values = values[np.isfinite(values)]
        ratio = values / threshold if threshold > 0 else np.where(values > threshold, np.inf, 0.0)
        bins = np.bincount(np.searchsorted(RATIO_EDGES, ratio, side="left"), minlength=len(RATIO_EDGES) + 1)
        return cls(int(values.size), int(np.count_nonzero(values > threshold)), tuple(int(n) for n in bins))

    def merge(self, other: OutlierCounts) -> OutlierCounts:
        return OutlierCounts(
            self.scored + other.scored,
            self.above + other.above,
            tuple(a + b for a, b in zip(self.histogram, other.histogram, strict=True)),
        )

    @property
    def rate(self) -> float | None:
        return self.above / self.scored if self.scored else None

    def to_dict(self) -> dict[str, Any]:
        return {"scored": self.scored, "above": self.above, "histogram": list(self.histogram)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> OutlierCounts:
        """A stored window's counts; windows stored before outlier scoring existed have none (all zero)."""
        if not data:
            return cls()
        histogram = tuple(int(n) for n in data.get("histogram") or ())
        if len(histogram) != len(RATIO_EDGES) + 1:
            histogram = cls().histogram
        return cls(int(data.get("scored", 0)), int(data.get("above", 0)), histogram)


@dataclass(frozen=True, slots=True)
class OutlierReport:
    """The outlier section of a version's report. ``available`` False says, in ``note``, why no row could be
    scored (no training data at registration, scoring turned off); ``rate`` is None until a row is scored, and
    ``expected_rate`` is the share of rows like the training rows that would score above the threshold."""

    available: bool
    method: str | None = None
    threshold: float | None = None
    rows_scored: int = 0
    rows_above: int = 0
    rate: float | None = None
    expected_rate: float | None = None
    histogram: tuple[int, ...] = ()
    note: str | None = None

    @classmethod
    def of(cls, model: OutlierModel | None, counts: OutlierCounts, *, unavailable: str) -> OutlierReport:
        if model is None:
            return cls(False, rows_scored=counts.scored, rows_above=counts.above, note=unavailable)
        note = None if counts.scored else "no rows scored in this range yet"
        return cls(
            True,
            model.method,
            model.threshold,
            counts.scored,
            counts.above,
            counts.rate,
            model.expected_rate,
            counts.histogram,
            note,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "method": self.method,
            "threshold": self.threshold,
            "rows_scored": self.rows_scored,
            "rows_above": self.rows_above,
            "rate": self.rate,
            "expected_rate": self.expected_rate,
            "score_ratio_histogram": {"edges": list(RATIO_EDGES), "counts": list(self.histogram)},
            "note": self.note,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> OutlierReport:
        histogram = fields.section("score_ratio_histogram")
        return cls(
            available=fields.flag("available"),
            method=fields.optional_text("method"),
            threshold=fields.optional_number("threshold"),
            rows_scored=fields.integer("rows_scored"),
            rows_above=fields.integer("rows_above"),
            rate=fields.optional_number("rate"),
            expected_rate=fields.optional_number("expected_rate"),
            histogram=tuple(int(n) for n in histogram.numbers("counts")),
            note=fields.optional_text("note"),
        )
