"""Request tracing: from one request id to the version, artifact, data, code, rows, feedback and rollout behind it.

The prediction log holds what was served (version, arm, inputs, outputs, latency); the registry holds what
that version is (artifact sha256, training-data hash, commit); the store holds the feedback joined by request
id and the rollout whose history spans the moment. Nothing here runs on the request path: a trace is read on
demand, by the CLI or the ``GET /v1/requests/{request_id}`` route.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.core.refs import NAME_PATTERN
from shipyard.core.versions import CodeInfo, ModelVersion
from shipyard.errors import InvalidArgumentError, NotFoundError
from shipyard.rollouts.machine import RolloutState
from shipyard.services.endpoints import EndpointService
from shipyard.store import feedback as feedback_repo
from shipyard.store import rollouts as rollout_repo
from shipyard.store.prediction_log import PredictionLog

MAX_REQUEST_ID_CHARS = 128
"""The feedback table's request-id column width; longer ids cannot have been logged or joined."""


class RequestNotFoundError(NotFoundError):
    """The request id is in no endpoint's prediction log searched (unknown, not sampled, or not yet written)."""

    code = "request_not_found"


@dataclass(frozen=True, slots=True)
class TracedRow:
    """One input row of the request as logged: its features and what the model answered."""

    row: int
    inputs: Mapping[str, Any]
    prediction: Any
    probabilities: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "inputs": dict(self.inputs),
            "prediction": self.prediction,
            "probabilities": list(self.probabilities) if self.probabilities is not None else None,
        }


@dataclass(frozen=True, slots=True)
class TracedFeedback:
    """Feedback joined to one row of the request (the latest value; ``corrections`` counts replaced ones)."""

    row: int
    label: Any
    reward: float | None
    observed_at: datetime
    corrections: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "label": self.label,
            "reward": self.reward,
            "observed_at": self.observed_at.isoformat(),
            "corrections": self.corrections,
        }


@dataclass(frozen=True, slots=True)
class RolloutMoment:
    """The rollout in progress when the request was served, as it stood then (not as it stands now)."""

    rollout_id: str
    strategy: str
    stable: str
    candidate: str
    status: str
    """``running`` or ``paused`` at that moment."""
    weight: float
    """The candidate's share of traffic at that moment."""
    last_event: str
    last_event_at: datetime
    status_now: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rollout_id": self.rollout_id,
            "strategy": self.strategy,
            "stable": self.stable,
            "candidate": self.candidate,
            "status": self.status,
            "weight": self.weight,
            "last_event": self.last_event,
            "last_event_at": self.last_event_at.isoformat(),
            "status_now": self.status_now,
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """Everything known about one served request, for an auditor or an on-call engineer."""

    request_id: str
    endpoint: str
    version: str
    arm: str
    served_at: datetime
    latency_ms: float | None
    sha256: str | None
    """None only when the version is no longer in the registry (the log outlives it)."""
    training_data_hash: str | None
    code: CodeInfo | None
    rows: tuple[TracedRow, ...]
    feedback: tuple[TracedFeedback, ...]
    rollout: RolloutMoment | None

    @property
    def model(self) -> str:
        return self.version.split(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "endpoint": self.endpoint,
            "version": self.version,
            "arm": self.arm,
            "served_at": self.served_at.isoformat(),
            "latency_ms": self.latency_ms,
            "sha256": self.sha256,
            "training_data_hash": self.training_data_hash,
            "code": self.code.to_dict() if self.code is not None else None,
            "rows": [r.to_dict() for r in self.rows],
            "feedback": [f.to_dict() for f in self.feedback],
            "rollout": self.rollout.to_dict() if self.rollout is not None else None,
        }


class TracingService:
    """Finds a request in the prediction log and joins it with the registry, feedback and rollouts."""

    def __init__(self, endpoints: EndpointService, log: PredictionLog) -> None:
        self.endpoints = endpoints
        self.registry = endpoints.registry
        self.db = endpoints.db
        self.log = log

    def trace(self, request_id: str, *, endpoint: str | None = None, within: Iterable[str] | None = None) -> Trace:
        """The trace of ``request_id``, searched in ``endpoint``'s log, else in every endpoint's (or ``within``).

        Naming the endpoint reads one log; without it every current endpoint's log is searched in turn.
        ``within`` limits that search (a key scoped to some endpoints never learns about the others).
        """
        request_id = request_id.strip()
        if not request_id or len(request_id) > MAX_REQUEST_ID_CHARS:
            raise InvalidArgumentError(f"request id must be 1 to {MAX_REQUEST_ID_CHARS} characters")
        if endpoint is not None:
            if not NAME_PATTERN.match(endpoint) or set(endpoint) <= {"."}:  # it becomes part of a log path
                raise InvalidArgumentError(f"endpoint {endpoint!r} is not a valid endpoint name")
            candidates = [endpoint]
        else:
            allowed = set(within) if within is not None else None
            candidates = [e.name for e in self.endpoints.list() if allowed is None or e.name in allowed]
        for name in candidates:
            rows = self.log.query(name, where="_request_id = ?", parameters=[request_id]).to_pylist()
            if rows:
                return self._trace(request_id, name, rows)
        where = f"endpoint {endpoint!r}'s prediction log" if endpoint else "the prediction log of any endpoint"
        raise RequestNotFoundError(
            f"request {request_id!r} is not in {where}: unknown, not sampled into the log "
            "(SHIPYARD_LOG_SAMPLE_RATE), or not written yet (the log is flushed every SHIPYARD_LOG_FLUSH_S)"
        )

    def _trace(self, request_id: str, endpoint: str, rows: list[dict[str, Any]]) -> Trace:
        rows.sort(key=lambda r: int(r["_row"]))
        first = rows[0]
        ref = str(first["_version"])
        served_at = _utc(first["_served_at"])
        version = self._version(ref)
        names = version.signature.names if version is not None else [c for c in first if not c.startswith("_")]
        traced = tuple(
            TracedRow(
                row=int(r["_row"]),
                inputs={n: _plain(r.get(n)) for n in names},
                prediction=_plain(r.get("_prediction")),
                probabilities=tuple(r["_probabilities"]) if r.get("_probabilities") is not None else None,
            )
            for r in rows
        )
        with self.db.read() as conn:
            feedback = feedback_repo.items(conn, endpoint, request_id=request_id)
            state = rollout_repo.started_before(conn, endpoint, served_at)
        latency = first.get("_latency_ms")
        return Trace(
            request_id=request_id,
            endpoint=endpoint,
            version=ref,
            arm=str(first["_arm"]),
            served_at=served_at,
            latency_ms=float(latency) if latency is not None else None,
            sha256=version.sha256 if version is not None else None,
            training_data_hash=version.training_data_hash if version is not None else None,
            code=version.code if version is not None else None,
            rows=traced,
            feedback=tuple(
                TracedFeedback(f.row, f.label, f.reward, _utc(f.observed_at), f.corrections) for f in feedback
            ),
            rollout=rollout_at(RolloutState.from_dict(state), served_at) if state is not None else None,
        )

    def _version(self, ref: str) -> ModelVersion | None:
        try:
            return self.registry.get(ref)
        except NotFoundError:  # the log outlives a version removed from the store: trace what the log holds
            return None


def rollout_at(state: RolloutState, when: datetime) -> RolloutMoment | None:
    """The rollout as it stood at ``when``; None when it had not started or had already finished by then."""
    if when < state.started_at:
        return None
    if not state.status.active:
        finished_at = state.events[-1].at if state.events else state.updated_at
        if when > finished_at:
            return None
    before = [e for e in state.events if e.at <= when]
    if not before:
        return None
    last = before[-1]
    paused = last.kind.value == "paused"
    return RolloutMoment(
        rollout_id=state.id,
        strategy=state.spec.strategy.value,
        stable=state.stable,
        candidate=state.candidate,
        status="paused" if paused else "running",
        weight=last.weight,
        last_event=last.kind.value,
        last_event_at=last.at,
        status_now=state.status.value,
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _plain(value: Any) -> Any:
    """JSON-ready: NaN (a missing float feature) as null, timestamps as text."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value
