"""Retraining use cases: declare a model's trainer, open a job, cancel it, and the moves a worker makes.

The CLI, the HTTP route and (later) an alert's action all open jobs here, so each is audited once
(``model.set_trainer``, ``job.create``, ``job.cancel``). Workers (the server holding the controller lease, or
``shipyard retrain --wait``) claim queued jobs here one model at a time; the work itself is ``shipyard.jobs``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shipyard.core.identity import LOCAL_ACTOR, Actor
from shipyard.core.jobs import MANUAL_CAUSE, Job, JobParams, JobState, Trainer, check_engine, check_transition
from shipyard.errors import InvalidArgumentError, ModelNotFoundError, NotFoundError
from shipyard.services.audit import record, since_cutoff
from shipyard.services.endpoints import EndpointService
from shipyard.services.registry import model_target
from shipyard.store import jobs as repo
from shipyard.store.db import Database

RETRAIN = "retrain"
MAX_TIMEOUT_S = 7 * 86400.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def job_target(job_id: str) -> str:
    return f"job:{job_id}"


class JobService:
    """Jobs in the store; who runs them is the worker's business, what they may do is decided here."""

    def __init__(self, endpoints: EndpointService, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.endpoints = endpoints
        self.registry = endpoints.registry
        self.db: Database = endpoints.db
        self.clock = clock

    # -- trainers -------------------------------------------------------------------------

    def set_trainer(self, model: str, trainer: Trainer | None, *, actor: Actor = LOCAL_ACTOR) -> None:
        """Declare (or, with None, remove) how ``model`` is retrained; every later job uses it."""
        with self.db.write() as conn:
            exists, before = repo.get_trainer(conn, model)
            if not exists:
                raise ModelNotFoundError(
                    f"no model named {model!r}; `shipyard models list` shows the registered models"
                )
            after = trainer.to_dict() if trainer is not None else None
            repo.set_trainer(conn, model, after, self.clock())
            record(
                conn,
                actor,
                "model.set_trainer",
                model_target(model),
                before=dict(before) if before else None,
                after=after,
            )

    def trainer(self, model: str) -> Trainer | None:
        with self.db.read() as conn:
            exists, stored = repo.get_trainer(conn, model)
        if not exists:
            raise ModelNotFoundError(f"no model named {model!r}; `shipyard models list` shows the registered models")
        return Trainer.from_dict(stored) if stored else None

    # -- opening and reading jobs ---------------------------------------------------------

    def retrain(
        self,
        endpoint: str,
        *,
        since: str | None = "30d",
        include_training_data: bool = False,
        timeout_s: float = 3600.0,
        engine: str = "local",
        cause: Mapping[str, Any] | None = None,
        actor: Actor = LOCAL_ACTOR,
    ) -> Job:
        """Queue a retraining job for the model ``endpoint`` serves; its window and parent are fixed now.

        ``since`` is how far back feedback is read (``30d``, ``12h``; None or ``all``: everything). ``cause``
        says why (``{"kind": "manual"}`` by default; an alert's action names its rule and alert). The job runs
        when a worker picks it up, after any job of the same model before it.
        """
        check_engine(engine)
        if not 0 < timeout_s <= MAX_TIMEOUT_S:
            raise InvalidArgumentError(f"timeout must be between 1s and 7d, got {timeout_s:g}s")
        stored = self.endpoints.get(endpoint)
        parent = self.registry.get(stored.model)
        trainer = self.trainer(parent.name)
        if trainer is None:
            raise InvalidArgumentError(
                f"model {parent.name!r} has no trainer; declare one first: shipyard models set-trainer "
                f"{parent.name} train:main (a module:function in your project) or --command 'python train.py'"
            )
        now = self.clock()
        cutoff = None if since is None or since.strip().lower() == "all" else since_cutoff(since, now=now)
        params = JobParams(
            endpoint=endpoint,
            parent=parent.ref,
            since=cutoff,
            until=now + timedelta(microseconds=1),  # feedback observed this instant is in the window
            include_training_data=include_training_data,
            timeout_s=timeout_s,
            trainer=trainer,
        )
        job = Job(
            id=uuid.uuid4().hex[:16],
            kind=RETRAIN,
            model=parent.name,
            endpoint=endpoint,
            state=JobState.QUEUED,
            engine=engine,
            params=params,
            cause=dict(cause or MANUAL_CAUSE),
            created_by=actor.principal.label,
            created_at=now,
        )
        with self.db.write() as conn:
            repo.insert(conn, job)
            record(
                conn,
                actor,
                "job.create",
                job_target(job.id),
                after={
                    "kind": RETRAIN,
                    "model": job.model,
                    "endpoint": endpoint,
                    "parent": parent.ref,
                    "cause": dict(job.cause),
                    "since": params.to_dict()["since"],
                },
                at=now,
            )
        return job

    def get(self, job_id: str) -> Job:
        with self.db.read() as conn:
            job = repo.get(conn, job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}; `shipyard jobs list` shows the jobs")
        return job

    def list_jobs(self, *, model: str | None = None, state: str | None = None, limit: int = 100) -> list[Job]:
        states: tuple[JobState, ...] = ()
        if state is not None:
            try:
                states = (JobState(state),)
            except ValueError:
                known = ", ".join(s.value for s in JobState)
                raise InvalidArgumentError(f"unknown job state {state!r}; choose one of: {known}") from None
        with self.db.read() as conn:
            return repo.list_jobs(conn, model=model, states=states, limit=limit)

    def cancel(self, job_id: str, *, actor: Actor = LOCAL_ACTOR) -> Job:
        """Cancel a queued job (it never runs) or a running one (its worker stops the process within a second)."""
        job = self.get(job_id)
        check_transition(job.id, job.state, JobState.CANCELLED)
        now = self.clock()
        with self.db.write() as conn:
            moved = repo.move(
                conn,
                job.id,
                source=(job.state,),
                target=JobState.CANCELLED,
                finished_at=now,
                error=f"cancelled by {actor.principal.label}",
            )
            if not moved:  # it changed meanwhile (started, or finished): judge again on what it is now
                current = repo.get(conn, job.id)
                assert current is not None
                check_transition(job.id, current.state, JobState.CANCELLED)
                raise InvalidArgumentError(f"job {job.id} changed while being cancelled; try again")
            record(
                conn,
                actor,
                "job.cancel",
                job_target(job.id),
                before={"state": job.state.value},
                after={"state": JobState.CANCELLED.value},
                at=now,
            )
        return self.get(job.id)

    # -- what a worker does ---------------------------------------------------------------

    def claim(self, worker: str, *, job_id: str | None = None) -> Job | None:
        """Start the oldest queued job whose model runs nothing else (or ``job_id``), as ``worker``'s."""
        with self.db.write() as conn:
            return repo.claim_next(conn, worker, self.clock(), job_id=job_id)

    def append_log(self, job_id: str, text: str) -> None:
        """Add the worker's latest output to the job's log (and show the job alive)."""
        with self.db.write() as conn:
            repo.append_log(conn, job_id, text, self.clock())

    def state_of(self, job_id: str) -> JobState:
        return self.get(job_id).state

    def finish(
        self,
        job_id: str,
        worker: str,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Record the end of a job this worker runs; False when it was cancelled (or declared dead) before."""
        target = JobState.SUCCEEDED if error is None else JobState.FAILED
        with self.db.write() as conn:
            return repo.move(
                conn,
                job_id,
                source=(JobState.RUNNING,),
                target=target,
                worker=worker,
                finished_at=self.clock(),
                result=dict(result) if result is not None else None,
                error=error,
            )

    def controller_holder(self) -> str | None:
        """The server process driving rollouts and jobs now, if any: ``retrain --wait`` leaves jobs to it."""
        from shipyard.services.rollouts import CONTROLLER_LEASE

        with self.db.read() as conn:
            return repo.lease_holder(conn, CONTROLLER_LEASE, self.clock())

    def fail_dead(self, dead: Callable[[Job, datetime | None], bool]) -> list[Job]:
        """Mark failed every running job whose worker ``dead`` says is gone, keeping the log it left."""
        with self.db.read() as conn:
            candidates = [job for job, beat in repo.running(conn) if dead(job, beat)]
        failed: list[Job] = []
        now = self.clock()
        for job in candidates:
            with self.db.write() as conn:
                note = f"\n[shipyard] worker {job.worker} died while the job ran (its process is gone); job failed\n"
                repo.append_log(conn, job.id, note, now)
                if repo.move(
                    conn,
                    job.id,
                    source=(JobState.RUNNING,),
                    target=JobState.FAILED,
                    worker=job.worker,
                    finished_at=now,
                    error=f"the worker running it ({job.worker}) died: the server or command was stopped",
                ):
                    failed.append(job)
        return failed
