"""What an offline comparison returns: the two datasets, how their columns differ, and the live report's
sections (drift, data quality, performance) plus the domain-classifier test only two sets of rows allow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.monitoring.drift_records import WindowDrift
from shipyard.monitoring.report import DataQuality, Performance

if TYPE_CHECKING:
    from shipyard.monitoring.multivariate import DomainClassifierResult


@dataclass(frozen=True, slots=True)
class DatasetSide:
    """One side: its name (a path, ``fraud:3``'s reference profile, or "reference frame"), rows, columns."""

    name: str
    rows: int
    columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "columns": list(self.columns)}


@dataclass(frozen=True, slots=True)
class TypeChange:
    """A column whose kind differs between the sides (number, boolean, date, text; the type read in brackets)."""

    feature: str
    reference: str
    current: str

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "reference": self.reference, "current": self.current}


@dataclass(frozen=True, slots=True)
class SchemaChanges:
    """Columns only in the reference (``missing``), only in the current data (``extra``), or of another kind:
    none of them is compared; every shared column of one kind is."""

    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    changed_types: tuple[TypeChange, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.missing or self.extra or self.changed_types)

    def to_dict(self) -> dict[str, Any]:
        return {
            "missing": list(self.missing),
            "extra": list(self.extra),
            "changed_types": [c.to_dict() for c in self.changed_types],
        }

    def lines(self) -> list[str]:
        """The differences as sentences, for the report and the terminal."""
        out = []
        if self.missing:
            out.append(f"missing from the current data: {', '.join(self.missing)}")
        if self.extra:
            out.append(f"only in the current data: {', '.join(self.extra)}")
        for c in self.changed_types:
            out.append(f"{c.feature}: type changed from {c.reference} to {c.current}")
        return out


@dataclass(frozen=True, slots=True)
class ComparisonReport:
    """The comparison of ``current`` against ``reference``. ``performance`` is None without target and
    prediction columns (``performance_note`` says why); ``multivariate`` is the domain-classifier test, None
    with ``multivariate_note`` when it did not run; ``notes`` list what could not be computed and why."""

    reference: DatasetSide
    current: DatasetSide
    generated_at: datetime
    schema: SchemaChanges
    drift: WindowDrift
    quality: DataQuality
    performance: Performance | None = None
    performance_note: str | None = None
    multivariate: DomainClassifierResult | None = None
    multivariate_note: str | None = None
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: the verdict, the drifted features, duplicates and schema changes."""
        drift = self.drift
        tested = sum(1 for f in drift.features if f.test is not None)
        parts = [f"{self.current.rows:,} rows vs {self.reference.rows:,} reference rows"]
        if drift.drifted_features:
            shown = ", ".join(drift.drifted_features[:8]) + (" …" if len(drift.drifted_features) > 8 else "")
            parts.append(f"drift in {len(drift.drifted_features)} of {tested} tested features ({shown})")
        else:
            parts.append(f"no drift in {tested} tested features")
        if drift.drift_share is not None:
            verdict = "dataset drift" if drift.dataset_drifted else "no dataset drift"
            parts.append(f"{verdict} ({drift.drift_share:.0%} drifted, threshold {drift.drift_share_threshold:.0%})")
        if self.multivariate is not None and self.multivariate.auc is not None:
            parts.append(f"domain classifier AUC {self.multivariate.auc:.3f} ({self.multivariate.verdict})")
        duplicates = self.quality.duplicates
        if duplicates is not None and duplicates.rows:
            parts.append(f"{duplicates.duplicates:,} duplicate rows")
        if self.schema.changed:
            parts.append(
                f"{len(self.schema.missing)} missing, {len(self.schema.extra)} extra, "
                f"{len(self.schema.changed_types)} retyped columns"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (None instead of NaN), keys in a fixed order."""
        return {
            "kind": "comparison",
            "generated_at": self.generated_at.isoformat(),
            "reference": self.reference.to_dict(),
            "current": self.current.to_dict(),
            "summary": self.summary(),
            "schema": self.schema.to_dict(),
            "drift": self.drift.to_dict(),
            "quality": self.quality.to_dict(),
            "performance": self.performance.to_dict() if self.performance is not None else None,
            "performance_note": self.performance_note,
            "multivariate": self.multivariate.to_dict() if self.multivariate is not None else None,
            "multivariate_note": self.multivariate_note,
            "notes": list(self.notes),
        }
