"""Rollout repository: states as JSON, their event history, per-worker evidence, and leases.

The pure core owns the shape of a rollout's state; the store keeps it whole as JSON and adds what only a
database can give: one active rollout per endpoint, an append-only history, evidence merged across
workers and replicas, and a lease so that exactly one controller drives each rollout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from shipyard.errors import ConflictError
from shipyard.store.tables import active_rollouts, leases, rollout_events, rollout_evidence, rollouts


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    rollout_id: str
    at: datetime
    kind: str
    message: str
    evidence: Mapping[str, Any]


def create(
    conn: Connection, rollout_id: str, endpoint: str, status: str, state: Mapping[str, Any], now: datetime
) -> None:
    """Store a new rollout as the endpoint's active one; a second active rollout is a conflict."""
    conn.execute(
        sa.insert(rollouts).values(
            id=rollout_id, endpoint=endpoint, status=status, state=dict(state), created_at=now, updated_at=now
        )
    )
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(active_rollouts).values(endpoint=endpoint, rollout_id=rollout_id))
    except IntegrityError:
        current = active_id(conn, endpoint)
        raise ConflictError(
            f"endpoint {endpoint!r} already has rollout {current} in progress; promote or abort it first"
        ) from None


def save(
    conn: Connection, rollout_id: str, *, status: str, state: Mapping[str, Any], finished: bool, now: datetime
) -> None:
    conn.execute(
        sa.update(rollouts).where(rollouts.c.id == rollout_id).values(status=status, state=dict(state), updated_at=now)
    )
    if finished:
        conn.execute(sa.delete(active_rollouts).where(active_rollouts.c.rollout_id == rollout_id))


def add_events(conn: Connection, rollout_id: str, events: Sequence[Mapping[str, Any]]) -> None:
    if events:
        conn.execute(
            sa.insert(rollout_events),
            [
                {
                    "rollout_id": rollout_id,
                    "at": e["at"],
                    "kind": e["kind"],
                    "message": e["message"],
                    "evidence": dict(e.get("evidence") or {}),
                }
                for e in events
            ],
        )


def active_id(conn: Connection, endpoint: str) -> str | None:
    return conn.execute(
        sa.select(active_rollouts.c.rollout_id).where(active_rollouts.c.endpoint == endpoint)
    ).scalar_one_or_none()


def get_state(conn: Connection, rollout_id: str) -> Mapping[str, Any] | None:
    return conn.execute(sa.select(rollouts.c.state).where(rollouts.c.id == rollout_id)).scalar_one_or_none()


def latest_id(conn: Connection, endpoint: str) -> str | None:
    """The endpoint's active rollout, else its most recent one."""
    active = active_id(conn, endpoint)
    if active is not None:
        return active
    return conn.execute(
        sa.select(rollouts.c.id).where(rollouts.c.endpoint == endpoint).order_by(rollouts.c.created_at.desc()).limit(1)
    ).scalar_one_or_none()


def started_before(conn: Connection, endpoint: str, when: datetime) -> Mapping[str, Any] | None:
    """The state of the endpoint's latest rollout created at or before ``when`` (a request's trace asks)."""
    return conn.execute(
        sa.select(rollouts.c.state)
        .where(rollouts.c.endpoint == endpoint, rollouts.c.created_at <= when)
        .order_by(rollouts.c.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def active_states(conn: Connection) -> dict[str, Mapping[str, Any]]:
    """Every rollout in progress, by endpoint: what serving applies and the controller drives."""
    rows = conn.execute(
        sa.select(active_rollouts.c.endpoint, rollouts.c.state).join(
            rollouts, rollouts.c.id == active_rollouts.c.rollout_id
        )
    )
    return {row.endpoint: row.state for row in rows}


def events(conn: Connection, rollout_id: str) -> list[StoredEvent]:
    rows = conn.execute(
        sa.select(rollout_events).where(rollout_events.c.rollout_id == rollout_id).order_by(rollout_events.c.id)
    )
    return [StoredEvent(r.rollout_id, _utc(r.at), r.kind, r.message, r.evidence) for r in rows]


def upsert_evidence(
    conn: Connection, rollout_id: str, step: int, arm: str, worker: str, evidence: Mapping[str, Any], now: datetime
) -> None:
    """A worker's running totals for one step and arm, replacing its previous flush."""
    stmt = _insert(conn, rollout_evidence).values(
        rollout_id=rollout_id, step=step, arm=arm, worker=worker, evidence=dict(evidence), updated_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["rollout_id", "step", "arm", "worker"], set_={"evidence": dict(evidence), "updated_at": now}
        )
    )


def evidence_rows(conn: Connection, rollout_id: str, step: int) -> list[tuple[str, Mapping[str, Any]]]:
    """Every worker's totals for one step, as (arm, evidence) pairs for the caller to merge."""
    rows = conn.execute(
        sa.select(rollout_evidence.c.arm, rollout_evidence.c.evidence).where(
            rollout_evidence.c.rollout_id == rollout_id, rollout_evidence.c.step == step
        )
    )
    return [(r.arm, r.evidence) for r in rows]


def acquire_lease(conn: Connection, name: str, holder: str, *, now: datetime, expires_at: datetime) -> bool:
    """Take or renew the lease ``name``; True when ``holder`` has it until ``expires_at``.

    One conditional UPDATE decides: the row's lock (PostgreSQL) or the write lock (SQLite) makes two
    contenders see each other's result, so at most one holds an unexpired lease.
    """
    conn.execute(
        _insert(conn, leases)
        .values(name=name, holder=holder, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    taken = conn.execute(
        sa.update(leases)
        .where(leases.c.name == name, sa.or_(leases.c.holder == holder, leases.c.expires_at < now))
        .values(holder=holder, expires_at=expires_at)
        .returning(leases.c.holder)
    ).first()
    return taken is not None


def release_lease(conn: Connection, name: str, holder: str) -> None:
    conn.execute(sa.delete(leases).where(leases.c.name == name, leases.c.holder == holder))
