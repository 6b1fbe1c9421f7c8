"""Jobs repository, and each model's trainer: rows in, ``core.jobs`` records out.

A state change is one conditional UPDATE (``WHERE state IN (...)``), so whichever of two writers comes second
(a worker finishing a job a person cancelled, a restart declaring dead a job that just finished) changes
nothing and learns so from the row count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.core.jobs import Job, JobParams, JobState
from shipyard.store.tables import jobs, leases, models

MAX_LOG_CHARS = 1_000_000
"""A job's stored log keeps its last million characters: a chatty trainer cannot fill the store."""


def get_trainer(conn: Connection, model: str) -> tuple[bool, Mapping[str, Any] | None]:
    """(whether the model exists, its trainer as stored or None)."""
    row = conn.execute(sa.select(models.c.trainer).where(models.c.name == model)).first()
    if row is None:
        return False, None
    return True, row.trainer


def set_trainer(conn: Connection, model: str, trainer: Mapping[str, Any] | None, now: datetime) -> bool:
    """Store the trainer; False when no model has that name."""
    changed = conn.execute(
        sa.update(models)
        .where(models.c.name == model)
        .values(trainer=dict(trainer) if trainer else None, updated_at=now)
    ).rowcount
    return bool(changed)


def insert(conn: Connection, job: Job) -> None:
    conn.execute(
        sa.insert(jobs).values(
            id=job.id,
            kind=job.kind,
            model=job.model,
            endpoint=job.endpoint,
            state=job.state.value,
            engine=job.engine,
            params=job.params.to_dict(),
            cause=dict(job.cause),
            created_by=job.created_by,
            created_at=job.created_at,
            log=job.log,
        )
    )


def get(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
    return _job(row) if row is not None else None


def list_jobs(
    conn: Connection, *, model: str | None = None, states: Iterable[JobState] = (), limit: int = 100
) -> list[Job]:
    """Newest first."""
    query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
    if model is not None:
        query = query.where(jobs.c.model == model)
    wanted = [s.value for s in states]
    if wanted:
        query = query.where(jobs.c.state.in_(wanted))
    return [_job(row) for row in conn.execute(query)]


def claim_next(conn: Connection, worker: str, now: datetime, *, job_id: str | None = None) -> Job | None:
    """Move the oldest queued job whose model runs no other job to running, for ``worker``; None if none can.

    The model's row is updated first: its lock (PostgreSQL) or the write lock (SQLite) makes two claimers of
    one model's jobs take turns, so the "no other job running" check and the claim cannot interleave.
    ``job_id`` claims that job only (``retrain --wait`` running its own job inline).
    """
    query = sa.select(jobs.c.id, jobs.c.model).where(jobs.c.state == JobState.QUEUED.value)
    if job_id is not None:
        query = query.where(jobs.c.id == job_id)
    candidates = conn.execute(query.order_by(jobs.c.created_at, jobs.c.id)).all()
    busy: set[str] = set()
    for candidate in candidates:
        model = str(candidate.model)
        if model in busy:
            continue
        conn.execute(sa.update(models).where(models.c.name == model).values(updated_at=models.c.updated_at))
        running = conn.execute(
            sa.select(sa.func.count()).where(jobs.c.model == model, jobs.c.state == JobState.RUNNING.value)
        ).scalar_one()
        if running:
            busy.add(model)
            continue
        moved = conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == candidate.id, jobs.c.state == JobState.QUEUED.value)
            .values(state=JobState.RUNNING.value, worker=worker, started_at=now, heartbeat_at=now)
        ).rowcount
        if moved:
            return get(conn, str(candidate.id))
    return None


def move(
    conn: Connection,
    job_id: str,
    *,
    source: Iterable[JobState],
    target: JobState,
    worker: str | None = None,
    **values: Any,
) -> bool:
    """Change the state if it is one of ``source`` (and, when given, the job is still ``worker``'s)."""
    query = sa.update(jobs).where(jobs.c.id == job_id, jobs.c.state.in_([s.value for s in source]))
    if worker is not None:
        query = query.where(jobs.c.worker == worker)
    return bool(conn.execute(query.values(state=target.value, **values)).rowcount)


def append_log(conn: Connection, job_id: str, text: str, now: datetime) -> None:
    """Add to the job's log and renew its heartbeat; the log keeps its tail past ``MAX_LOG_CHARS``."""
    if text:
        current = conn.execute(sa.select(jobs.c.log).where(jobs.c.id == job_id)).scalar_one_or_none() or ""
        combined = (current + text)[-MAX_LOG_CHARS:]
        conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(log=combined, heartbeat_at=now))
    else:
        conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(heartbeat_at=now))


def running(conn: Connection) -> list[tuple[Job, datetime | None]]:
    """Every running job with its last heartbeat."""
    rows = conn.execute(sa.select(jobs).where(jobs.c.state == JobState.RUNNING.value)).all()
    return [(_job(row), row.heartbeat_at) for row in rows]


def lease_holder(conn: Connection, name: str, now: datetime) -> str | None:
    """Who holds the lease ``name`` now (None when nobody, or it expired)."""
    row = conn.execute(sa.select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)).first()
    if row is None or row.expires_at <= now:
        return None
    return str(row.holder)


def _job(row: Any) -> Job:
    return Job(
        id=str(row.id),
        kind=str(row.kind),
        model=str(row.model),
        endpoint=row.endpoint,
        state=JobState(row.state),
        engine=str(row.engine),
        params=JobParams.from_dict(row.params),
        cause=dict(row.cause or {}),
        created_by=str(row.created_by),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        worker=row.worker,
        result=dict(row.result) if row.result is not None else None,
        error=row.error,
        log=row.log or "",
    )
