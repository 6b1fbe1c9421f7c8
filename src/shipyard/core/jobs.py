"""Retraining jobs as records: the states a job moves through, the trainer a model declares, the job itself.

Pure: the store keeps these as rows, the service moves them under a transaction, the runner does the work.
A job that ended (succeeded, failed, cancelled) never changes again, so a late answer from a worker that
lost the race (a cancel, a restart that declared it dead) cannot overwrite what the store already says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shipyard.core.signature import Signature
from shipyard.errors import ConflictError, InvalidArgumentError


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}
"""Queued jobs fail too: a job whose training set cannot be built never starts a process."""


def check_transition(job_id: str, current: JobState, target: JobState) -> None:
    """Refuse a move the machine does not allow, naming the job and what it could do instead."""
    if target in TRANSITIONS[current]:
        return
    if current.finished:
        raise ConflictError(f"job {job_id} already {current.value}; a finished job does not change")
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current]))
    raise ConflictError(f"job {job_id} is {current.value}: it can become {allowed}, not {target.value}")


class TrainerKind(StrEnum):
    CALLABLE = "callable"
    COMMAND = "command"


_CALLABLE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


@dataclass(frozen=True, slots=True)
class Trainer:
    """How a model is retrained: ``module:function`` imported from ``project_dir``, or a shell command run there."""

    kind: TrainerKind
    target: str
    project_dir: str

    @classmethod
    def parse(cls, *, callable_target: str | None, command: str | None, project_dir: str) -> Trainer:
        """From the CLI's two exclusive options; the callable's syntax is checked now, not when a job runs."""
        if (callable_target is None) == (command is None):
            raise InvalidArgumentError(
                "give the trainer as a callable (module:function, e.g. train:main) or as --command "
                "'python train.py', exactly one of the two"
            )
        if callable_target is not None:
            if not _CALLABLE.match(callable_target):
                raise InvalidArgumentError(
                    f"trainer {callable_target!r} is not module:function (e.g. train:main, or "
                    "pipelines.fraud:fit for pipelines/fraud.py)"
                )
            return cls(TrainerKind.CALLABLE, callable_target, project_dir)
        assert command is not None
        if not command.strip():
            raise InvalidArgumentError("the trainer command is empty; give one such as 'python train.py'")
        return cls(TrainerKind.COMMAND, command.strip(), project_dir)

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "target": self.target, "project_dir": self.project_dir}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trainer:
        return cls(TrainerKind(str(data["kind"])), str(data["target"]), str(data["project_dir"]))

    def describe(self) -> str:
        return f"{self.target} (in {self.project_dir})" if self.kind is TrainerKind.CALLABLE else f"`{self.target}`"


MANUAL_CAUSE: Mapping[str, str] = {"kind": "manual"}
"""Why a job was opened when a person asked for it; an alert's action names its rule and alert id instead."""


@dataclass(frozen=True, slots=True)
class JobParams:
    """What a retraining job was asked to do, fixed at creation so a re-run trains on the same window."""

    endpoint: str
    parent: str
    since: datetime | None
    until: datetime
    include_training_data: bool = False
    timeout_s: float = 3600.0
    trainer: Trainer | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "parent": self.parent,
            "since": self.since.isoformat() if self.since is not None else None,
            "until": self.until.isoformat(),
            "include_training_data": self.include_training_data,
            "timeout_s": self.timeout_s,
            "trainer": self.trainer.to_dict() if self.trainer is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobParams:
        since = data.get("since")
        trainer = data.get("trainer")
        return cls(
            endpoint=str(data["endpoint"]),
            parent=str(data["parent"]),
            since=datetime.fromisoformat(since) if since else None,
            until=datetime.fromisoformat(str(data["until"])),
            include_training_data=bool(data.get("include_training_data", False)),
            timeout_s=float(data.get("timeout_s", 3600.0)),
            trainer=Trainer.from_dict(trainer) if trainer else None,
        )


@dataclass(frozen=True, slots=True)
class Job:
    """One stored job. ``result`` holds, on success, the new version's ``ref`` (what validation and a canary
    pick up next) and its lineage; ``error`` the one-line reason of a failure."""

    id: str
    kind: str
    model: str
    endpoint: str | None
    state: JobState
    engine: str
    params: JobParams
    cause: Mapping[str, Any]
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    result: Mapping[str, Any] | None = None
    error: str | None = None
    log: str = field(default="", repr=False)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish (None until it ran); a job cancelled while queued never ran."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    @property
    def version_ref(self) -> str | None:
        """The version a succeeded job registered, e.g. ``fraud:2``."""
        ref = (self.result or {}).get("ref")
        return str(ref) if ref is not None else None

    def to_dict(self, *, with_log: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "endpoint": self.endpoint,
            "state": self.state.value,
            "engine": self.engine,
            "params": self.params.to_dict(),
            "cause": dict(self.cause),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_s": self.duration_s,
            "worker": self.worker,
            "result": dict(self.result) if self.result is not None else None,
            "error": self.error,
        }
        if with_log:
            data["log"] = self.log
        return data


ENGINES = ("local", "ray")
"""``local`` runs the trainer in a subprocess of the process that picked the job up; ``ray`` is not built yet."""


def check_engine(engine: str) -> str:
    if engine == "local":
        return engine
    if engine == "ray":
        raise InvalidArgumentError(
            "the Ray Job engine is not supported yet: retraining runs with --engine local (a subprocess of the "
            "server holding the controller lease, or of `shipyard retrain --wait`)"
        )
    raise InvalidArgumentError(f"unknown job engine {engine!r}; choose one of: {', '.join(ENGINES)}")


def signature_changes(parent: Signature, candidate: Signature) -> list[str]:
    """How a retrained model's contract differs from its parent's; empty when callers need not change.

    A retrained version replaces its parent behind the same endpoint, so what callers send (feature names and
    kinds of value) and what they get back (kind of output, classes) must stay. Integer and float count as one
    kind: a column with a missing value comes back from Parquet as float.
    """
    changes: list[str] = []
    old, new = list(parent.names), list(candidate.names)
    if old != new:
        missing = [n for n in old if n not in new]
        extra = [n for n in new if n not in old]
        if missing:
            changes.append(f"features missing: {', '.join(map(repr, missing))}")
        if extra:
            changes.append(f"new features: {', '.join(map(repr, extra))}")
        if not missing and not extra:
            changes.append(f"features in another order: {new} instead of {old}")
    else:
        for before, after in zip(parent.features, candidate.features, strict=True):
            if before.type != after.type and not (before.type.is_numeric and after.type.is_numeric):
                changes.append(f"feature {before.name!r} is {after.type.value}, was {before.type.value}")
    if parent.output.kind != candidate.output.kind:
        changes.append(f"output is {candidate.output.kind.value}, was {parent.output.kind.value}")
    elif parent.output.classes is not None and candidate.output.classes is not None:
        old_classes = [str(c) for c in parent.output.classes]
        if old_classes != [str(c) for c in candidate.output.classes]:
            changes.append(f"classes are {list(candidate.output.classes)}, were {list(parent.output.classes)}")
    return changes
