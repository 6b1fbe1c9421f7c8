"""What one validation run found, as stored with the version and shown by the CLI, the card and the API.

Frozen records, turned into JSON only at the edges (``to_dict``/``from_dict``), so a run stored today reads
back the same in a later release; fields added later get defaults when an older row lacks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shipyard.core.jsonsafe import finite_or_none
from shipyard.monitoring.validation_gates import GateResult


def _figures(data: Mapping[str, Any] | None) -> dict[str, float | None]:
    return {str(k): (None if v is None else float(v)) for k, v in (data or {}).items()}


@dataclass(frozen=True, slots=True)
class Latency:
    """One-row predictions timed one after another (what a caller of the endpoint waits for, model only), and
    the whole holdout scored as one batch (what ``shipyard batch`` gets)."""

    rows_timed: int
    p50_ms: float
    p99_ms: float
    batch_rows: int
    throughput_rows_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_timed": self.rows_timed,
            "p50_ms": finite_or_none(self.p50_ms),
            "p99_ms": finite_or_none(self.p99_ms),
            "batch_rows": self.batch_rows,
            "throughput_rows_s": finite_or_none(self.throughput_rows_s),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Latency:
        throughput = data.get("throughput_rows_s")
        return cls(
            int(data["rows_timed"]),
            float(data.get("p50_ms") or 0.0),
            float(data.get("p99_ms") or 0.0),
            int(data.get("batch_rows", 0)),
            None if throughput is None else float(throughput),
        )


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """Whether the candidate takes what ``against``'s callers send and still returns what they read."""

    against: str
    problems: tuple[str, ...] = ()

    @property
    def compatible(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"against": self.against, "compatible": self.compatible, "problems": list(self.problems)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignatureCheck:
        return cls(str(data["against"]), tuple(str(p) for p in data.get("problems", ())))


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """Candidate against champion on the same rows: the loss compared, the paired bootstrap interval of the
    difference (what the regression gate decides on), and McNemar's test for classifiers (reported beside it)."""

    loss: str
    interval: Mapping[str, Any]
    mcnemar: Mapping[str, Any] | None
    decided_on: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "interval": dict(self.interval),
            "mcnemar": dict(self.mcnemar) if self.mcnemar is not None else None,
            "decided_on": self.decided_on,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairedComparison:
        mcnemar = data.get("mcnemar")
        return cls(
            str(data["loss"]), dict(data["interval"]), dict(mcnemar) if mcnemar else None, str(data["decided_on"])
        )


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """One run of ``shipyard validate``: the candidate's figures (and the champion's), its checks, the gates.

    ``figures`` are the names gates use (``accuracy``, ``p99_ms``, ``drift`` ...); ``missing`` says why a
    figure is absent. ``quality``, ``fairness`` and ``drift`` hold the monitoring package's full results.
    ``id`` and ``created_at`` are set once the run is stored.
    """

    candidate: str
    task: str
    data: str
    rows: int
    target: str
    figures: Mapping[str, float | None]
    missing: Mapping[str, str]
    gates: tuple[GateResult, ...]
    latency: Latency | None = None
    champion: str | None = None
    champion_source: str | None = None
    champion_figures: Mapping[str, float | None] = field(default_factory=dict)
    comparison: PairedComparison | None = None
    signature: SignatureCheck | None = None
    quality: Mapping[str, Any] | None = None
    fairness: tuple[Mapping[str, Any], ...] = ()
    drift: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    id: int | None = None
    created_at: datetime | None = None
    created_by: str | None = None

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def summary(self) -> str:
        """One line for a card or a log: the verdict and the gates behind it."""
        verdict = "passed" if self.passed else "failed"
        failed = self.failed_gates
        gates = f"{len(self.gates) - len(failed)}/{len(self.gates)} gates passed"
        which = f" (failed: {', '.join(g.name for g in failed)})" if failed else ""
        against = f" vs {self.champion}" if self.champion else ""
        return f"{verdict}: {gates}{which}{against} on {self.rows:,} rows of {self.data}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "candidate": self.candidate,
            "passed": self.passed,
            "task": self.task,
            "data": self.data,
            "rows": self.rows,
            "target": self.target,
            "figures": {k: finite_or_none(v) for k, v in self.figures.items()},
            "missing": dict(self.missing),
            "gates": [g.to_dict() for g in self.gates],
            "latency": self.latency.to_dict() if self.latency is not None else None,
            "champion": self.champion,
            "champion_source": self.champion_source,
            "champion_figures": {k: finite_or_none(v) for k, v in self.champion_figures.items()},
            "comparison": self.comparison.to_dict() if self.comparison is not None else None,
            "signature": self.signature.to_dict() if self.signature is not None else None,
            "quality": dict(self.quality) if self.quality is not None else None,
            "fairness": [dict(f) for f in self.fairness],
            "drift": dict(self.drift) if self.drift is not None else None,
            "notes": list(self.notes),
            "created_at": self.created_at.isoformat() if self.created_at is not None else None,
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationResult:
        latency, comparison, signature = data.get("latency"), data.get("comparison"), data.get("signature")
        created_at = data.get("created_at")
        return cls(
            candidate=str(data["candidate"]),
            task=str(data["task"]),
            data=str(data["data"]),
            rows=int(data["rows"]),
            target=str(data["target"]),
            figures=_figures(data.get("figures")),
            missing={str(k): str(v) for k, v in (data.get("missing") or {}).items()},
            gates=tuple(GateResult.from_dict(g) for g in data.get("gates", ())),
            latency=Latency.from_dict(latency) if latency else None,
            champion=data.get("champion"),
            champion_source=data.get("champion_source"),
            champion_figures=_figures(data.get("champion_figures")),
            comparison=PairedComparison.from_dict(comparison) if comparison else None,
            signature=SignatureCheck.from_dict(signature) if signature else None,
            quality=data.get("quality"),
            fairness=tuple(data.get("fairness") or ()),
            drift=data.get("drift"),
            notes=tuple(str(n) for n in data.get("notes", ())),
            id=data.get("id"),
            created_at=datetime.fromisoformat(created_at) if created_at else None,
            created_by=data.get("created_by"),
        )
