"""Validation gates for CI: score a holdout with a candidate (and a champion), judge the gates, keep the evidence.

A run measures quality, calibration, fairness, per-row latency, size, drift against the reference profile and
the signature's compatibility with what the champion's callers send; compares candidate and champion on the
same rows with paired statistics; and stores the result on the version with an audit record, so approvals and
rollouts can require a passing run (``require_validation`` on an endpoint). The CLI (``shipyard validate``),
``shipyard.validate`` and retraining jobs all call ``ValidationService.validate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.identity import LOCAL_ACTOR, Actor
from shipyard.core.signature import OutputKind
from shipyard.core.versions import ModelVersion
from shipyard.errors import AliasNotFoundError, EndpointNotFoundError, InvalidArgumentError, ShipyardError
from shipyard.monitoring.paired import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from shipyard.monitoring.validation_gates import GateResult, GateSpec, RegressionCheck, evaluate
from shipyard.monitoring.validation_records import PairedComparison, SignatureCheck, ValidationResult
from shipyard.services import validation_checks as checks
from shipyard.services.audit import record
from shipyard.services.endpoints import EndpointService
from shipyard.services.registry import RegistryService, model_target
from shipyard.store import validations as repo

if TYPE_CHECKING:
    import pandas as pd

LATENCY_ROWS = 200
"""One-row predictions timed per run: enough for a p99 that is not the maximum of a handful, quick in CI."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Champion:
    """The version the candidate is judged against, and how it was named (``fraud@champion``, an endpoint)."""

    version: ModelVersion
    source: str


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """How a run measures: rows timed one by one, and the paired bootstrap's size, confidence and seed."""

    latency_rows: int = LATENCY_ROWS
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = 0


class ValidationService:
    def __init__(
        self, registry: RegistryService, endpoints: EndpointService, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.registry = registry
        self.endpoints = endpoints
        self.db = registry.db
        self.clock = clock or utcnow

    # -- running ---------------------------------------------------------------------------------

    def validate(
        self,
        ref: str,
        data: Any,
        target: str,
        *,
        champion: str | None = None,
        gates: GateSpec | None = None,
        options: ValidationOptions | None = None,
        actor: Actor = LOCAL_ACTOR,
        store: bool = True,
    ) -> ValidationResult:
        """Measure ``ref`` on the holdout ``data`` (a CSV/Parquet path or a DataFrame) and judge ``gates``.

        ``champion`` is a version ref, an alias of the candidate's model, or an endpoint (its stable version).
        Bad input (an unknown ref, a missing target column, a gate naming an unknown figure, a file that does
        not fit the signature) raises before anything is stored; failing gates are a result, not an error.
        """
        gates = gates or GateSpec()
        options = options or ValidationOptions()
        if options.latency_rows < 1:
            raise InvalidArgumentError(f"latency_rows must be at least 1, got {options.latency_rows}")
        candidate = self.registry.get(ref)
        task = _task(candidate)
        opponent = self.resolve_champion(candidate, champion) if champion is not None else None
        gates.check_task(task, has_champion=opponent is not None)
        frame, name = checks.read_holdout(data, target)
        result = self._measure(candidate, task, opponent, frame, name, target, gates, options)
        if not store:
            return result
        with self.db.write() as conn:
            stored = repo.insert(
                conn, candidate.name, candidate.version, result, created_by=actor.principal.label, now=self.clock()
            )
            record(
                conn,
                actor,
                "model.validate",
                model_target(candidate.ref),
                after={
                    "validation": stored.id,
                    "passed": stored.passed,
                    "champion": stored.champion,
                    "data": stored.data,
                    "rows": stored.rows,
                    "failed_gates": [g.name for g in stored.failed_gates],
                },
                at=stored.created_at,
            )
        return stored

    def resolve_champion(self, candidate: ModelVersion, vs: str) -> Champion:
        """``fraud:3`` / ``fraud@champion`` as refs; a bare word as an endpoint, else an alias of the model."""
        vs = vs.strip()
        if not vs:
            raise InvalidArgumentError("--vs needs a version ref, an alias or an endpoint name")
        if ":" in vs or "@" in vs:
            return Champion(self.registry.get(vs), vs)
        try:
            endpoint = self.endpoints.get(vs)
        except EndpointNotFoundError:
            pass
        else:
            return Champion(self.endpoints.resolve(endpoint).version, f"endpoint {vs} (stable)")
        try:
            return Champion(self.registry.get(f"{candidate.name}@{vs}"), f"{candidate.name}@{vs}")
        except AliasNotFoundError:
            raise InvalidArgumentError(
                f"--vs {vs!r} is neither an endpoint nor an alias of {candidate.name}; give a version ref "
                f"(e.g. {candidate.name}:{max(candidate.version - 1, 1)}), an alias or an endpoint name"
            ) from None

    def _measure(
        self,
        candidate: ModelVersion,
        task: str,
        opponent: Champion | None,
        frame: pd.DataFrame,
        name: str,
        target: str,
        gates: GateSpec,
        options: ValidationOptions,
    ) -> ValidationResult:
        features = checks.features_for(frame, candidate.signature, candidate.ref, name)
        model = self.registry.load(candidate)
        prediction, throughput = _scored(model, features, candidate.ref, name)
        labelled = checks.labelled_rows(frame[target].tolist())
        notes: list[str] = []
        if not labelled.all():
            notes.append(f"{int((~labelled).sum()):,} rows without a {target!r} value were left out of quality")
        labels = frame[target].to_numpy(dtype=object)[labelled]
        quality = checks.quality(candidate.signature, _subset(prediction, labelled), labels)
        figures: dict[str, float | None] = dict(quality.figures)
        missing = dict(quality.missing)
        fairness, gap, why = checks.fairness(candidate.signature, frame[labelled], labels, quality.predictions)
        figures["fairness_gap"] = gap
        if why:
            missing["fairness_gap"] = why
        latency = checks.latency(model, features, rows=options.latency_rows, throughput=throughput)
        figures.update(p50_ms=latency.p50_ms, p99_ms=latency.p99_ms, throughput_rows_s=throughput)
        figures["size_mb"] = candidate.size_bytes / 1e6
        drift = self._drift(candidate, features)
        figures["drift"] = drift.get("drift_share")
        if figures["drift"] is None:
            missing["drift"] = str(drift.get("note") or "no feature could be tested")

        signature: SignatureCheck | None = None
        comparison: PairedComparison | None = None
        champion_figures: dict[str, float | None] = {}
        regression: RegressionCheck | None = None
        if opponent is not None:
            champ = opponent.version
            signature = checks.signature_check(candidate.signature, champ.signature, against=opponent.source)
            champ_features = checks.features_for(frame, champ.signature, champ.ref, name)
            champ_model = self.registry.load(champ)
            champ_prediction, _ = _scored(champ_model, champ_features, champ.ref, name)
            champ_quality = checks.quality(champ.signature, _subset(champ_prediction, labelled), labels)
            champion_figures = {**champ_quality.figures, "size_mb": champ.size_bytes / 1e6}
            comparison, why_not = checks.paired(
                task,
                quality,
                champ_quality,
                confidence=options.confidence,
                resamples=options.resamples,
                seed=options.seed,
            )
            regression = _regression_check(task, gates, comparison, champ_quality.figures, why_not)

        results = evaluate(gates, figures, missing, regression=regression)
        if signature is not None:
            results.insert(0, _signature_gate(signature))
        return ValidationResult(
            candidate=candidate.ref,
            task=task,
            data=name,
            rows=len(frame),
            target=target,
            figures=figures,
            missing=missing,
            gates=tuple(results),
            latency=latency,
            champion=opponent.version.ref if opponent is not None else None,
            champion_source=opponent.source if opponent is not None else None,
            champion_figures=champion_figures,
            comparison=comparison,
            signature=signature,
            quality=quality.result,
            fairness=tuple(fairness),
            drift=drift,
            notes=tuple(notes),
        )

    def _drift(self, version: ModelVersion, features: pd.DataFrame) -> dict[str, Any]:
        """The holdout's drift against the version's reference profile, as ``shipyard drift`` measures it."""
        from shipyard.services.compare import compare_with_version

        if version.reference_profile is None:
            return {"note": f"{version.ref} has no reference profile (register it with training_data=...)"}
        try:
            report = compare_with_version(version, features, clock=self.clock)
        except ShipyardError as exc:
            return {"note": f"drift could not be measured: {exc}"}
        drift = report.drift
        tested = sum(1 for f in drift.features if f.test is not None)
        return {
            "drift_share": drift.drift_share,
            "drift_share_threshold": drift.drift_share_threshold,
            "dataset_drifted": drift.dataset_drifted,
            "drifted_features": list(drift.drifted_features),
            "tested_features": tested,
            "summary": report.summary(),
            "note": None if drift.drift_share is not None else "no feature could be tested against the reference",
        }

    # -- reading ---------------------------------------------------------------------------------

    def list(self, ref: str, *, limit: int = repo.MAX_LIST) -> list[ValidationResult]:
        """A version's runs, newest first."""
        if not 1 <= limit <= repo.MAX_LIST:
            raise InvalidArgumentError(f"limit must be between 1 and {repo.MAX_LIST}, got {limit}")
        version = self.registry.get(ref)
        with self.db.read() as conn:
            return repo.for_version(conn, version.name, version.version, limit=limit)

    def latest(self, version: ModelVersion) -> ValidationResult | None:
        with self.db.read() as conn:
            return repo.latest(conn, version.name, version.version)


def _task(version: ModelVersion) -> str:
    kind = version.signature.output.kind
    if kind is OutputKind.CLASSIFICATION:
        return "classification"
    if kind is OutputKind.REGRESSION:
        return "regression"
    raise InvalidArgumentError(
        f"{version.ref} returns {kind.value} outputs; validation gates measure classifiers and regressors"
    )


def _scored(model: Any, features: pd.DataFrame, ref: str, name: str) -> tuple[Any, float | None]:
    try:
        return checks.score(model, features)
    except ShipyardError as exc:  # a signature mismatch (types, categories) is the holdout's fault: bad input
        raise InvalidArgumentError(f"holdout {name} does not fit {ref}: {exc}") from exc


def _subset(prediction: Any, rows: np.ndarray) -> Any:
    from shipyard.flavors.loaded import Prediction

    proba = prediction.probabilities
    return Prediction(
        np.asarray(prediction.predictions)[rows], None if proba is None else np.asarray(proba)[rows], prediction.classes
    )


def _regression_check(
    task: str,
    gates: GateSpec,
    comparison: PairedComparison | None,
    champion: dict[str, float | None],
    why_not: str | None,
) -> RegressionCheck | None:
    if gates.max_regression is None:
        return None
    if comparison is None:
        return RegressionCheck(None, None, "paired bootstrap", why_not)
    upper = comparison.interval.get("upper")
    bound = f"paired bootstrap {float(comparison.interval.get('confidence', 0.95)):.0%} bound"
    if task == "classification":
        return RegressionCheck(upper, gates.max_regression, f"{bound} on accuracy lost")
    mae = champion.get("mae")
    if mae is None:
        return RegressionCheck(None, None, bound, "the champion's MAE is undefined on this holdout")
    return RegressionCheck(
        upper, gates.max_regression * mae, f"{bound} on MAE added (allowed {gates.max_regression:g} x MAE {mae:.4g})"
    )


def _signature_gate(check: SignatureCheck) -> GateResult:
    detail = "compatible" if check.compatible else "; ".join(check.problems)
    return GateResult(
        f"signature compatible with {check.against}", check.compatible, float(len(check.problems)), 0.0, detail
    )
