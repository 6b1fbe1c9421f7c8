"""Webhook outbox repository: events written with the change they report, and each receiver's cursor.

An event is a row of ``webhook_outbox``, inserted in the transaction of its change, so it exists exactly
when the change committed. A receiver's progress is one row of ``webhook_receivers``: ``last_id`` is the
last event it was given (delivered, or given up on), and its retry state. Delivery reads events after the
cursor in id order, so ids must be handed out in commit order: on SQLite writers are serialised anyway;
on PostgreSQL two transactions could take ids 5 and 6 and commit 6 first, and a reader that saw 6 and
moved its cursor past 5 would never send 5. An advisory lock held from the insert to the commit keeps
the writers of events in line (they are rare: rollout moves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shipyard.store.tables import webhook_outbox, webhook_receivers

if TYPE_CHECKING:
    import logging

    from shipyard.store.db import Database

# Any constant shared by every Shipyard process (distinct from the migration lock's key).
_OUTBOX_LOCK_KEY = 7_203_311_406


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One stored event: ``id`` orders delivery and is the delivery id a receiver de-duplicates on."""

    id: int
    endpoint: str
    event: str
    payload: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReceiverState:
    """How far one receiver has got, and when its next try is due after a failure."""

    receiver: str
    last_id: int
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered: int
    failed: int


def add(conn: Connection, events: Sequence[tuple[str, str, Mapping[str, Any]]], now: datetime) -> None:
    """Append (endpoint, event, payload) rows; call last in the transaction (it may wait on the lock)."""
    if not events:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _OUTBOX_LOCK_KEY})
    conn.execute(
        sa.insert(webhook_outbox),
        [{"endpoint": e, "event": kind, "payload": dict(payload), "created_at": now} for e, kind, payload in events],
    )


def last_id(conn: Connection) -> int:
    """The newest event's id, 0 when there is none."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(webhook_outbox.c.id), 0))).scalar_one())


def after(conn: Connection, cursor: int, *, limit: int) -> list[OutboxEvent]:
    """Up to ``limit`` events with an id above ``cursor``, oldest first."""
    rows = conn.execute(
        sa.select(webhook_outbox).where(webhook_outbox.c.id > cursor).order_by(webhook_outbox.c.id).limit(limit)
    )
    return [OutboxEvent(r.id, r.endpoint, r.event, r.payload, r.created_at) for r in rows]


def register(conn: Connection, receivers: Sequence[str], now: datetime) -> None:
    """Give receivers not seen before a cursor at the current end: they get what happens from now on."""
    if not receivers:
        return
    end = last_id(conn)
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(webhook_receivers)
    conn.execute(
        insert.on_conflict_do_nothing(index_elements=["receiver"]),
        [{"receiver": r, "last_id": end, "attempts": 0, "updated_at": now} for r in receivers],
    )


def state(conn: Connection, receiver: str) -> ReceiverState | None:
    row = conn.execute(sa.select(webhook_receivers).where(webhook_receivers.c.receiver == receiver)).first()
    if row is None:
        return None
    return ReceiverState(
        row.receiver, row.last_id, row.attempts, row.next_attempt_at, row.last_error, row.delivered, row.failed
    )


def advance(
    conn: Connection, receiver: str, *, from_id: int, to_id: int, error: str | None = None, now: datetime
) -> bool:
    """Move the cursor past one event, delivered (``error`` None) or given up on (why, in ``error``).

    Only from ``from_id``: a process that lost the lease and another that took it cannot both move the
    cursor past the same event. False when the cursor was not at ``from_id``.
    """
    counter = webhook_receivers.c.delivered if error is None else webhook_receivers.c.failed
    moved = conn.execute(
        sa.update(webhook_receivers)
        .where(webhook_receivers.c.receiver == receiver, webhook_receivers.c.last_id == from_id)
        .values(
            {
                webhook_receivers.c.last_id: to_id,
                webhook_receivers.c.attempts: 0,
                webhook_receivers.c.next_attempt_at: None,
                webhook_receivers.c.last_error: error,
                counter: counter + 1,
                webhook_receivers.c.updated_at: now,
            }
        )
    )
    return moved.rowcount == 1


def failed_attempt(
    conn: Connection, receiver: str, *, at_id: int, attempts: int, next_attempt_at: datetime, error: str, now: datetime
) -> None:
    """Record a failed try of the event after ``at_id`` and when to try again."""
    conn.execute(
        sa.update(webhook_receivers)
        .where(webhook_receivers.c.receiver == receiver, webhook_receivers.c.last_id == at_id)
        .values(attempts=attempts, next_attempt_at=next_attempt_at, last_error=error, updated_at=now)
    )


def prune(conn: Connection, *, before: datetime, receivers: Sequence[str] = ()) -> int:
    """Delete events created before ``before`` that every live receiver is past; returns how many.

    A receiver is live when it is in ``receivers`` (the pruning server's own) or its row changed since
    ``before`` (another server delivered to it, or tried to); one left idle that long, say configured only
    on a server that never held the lease, does not keep events forever. The newest event is always kept:
    SQLite hands out max(id) + 1 for a new row, so an emptied table would reuse ids below the receivers'
    cursors and those events would never be sent.
    """
    newest = sa.select(sa.func.max(webhook_outbox.c.id)).scalar_subquery()
    query = sa.delete(webhook_outbox).where(webhook_outbox.c.created_at < before, webhook_outbox.c.id < newest)
    live = webhook_receivers.c.updated_at >= before
    if receivers:
        live = sa.or_(live, webhook_receivers.c.receiver.in_(list(receivers)))
    lowest = conn.execute(sa.select(sa.func.min(webhook_receivers.c.last_id)).where(live)).scalar_one_or_none()
    if lowest is not None:
        query = query.where(webhook_outbox.c.id <= lowest)
    return int(conn.execute(query).rowcount or 0)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How a receiver (a webhook URL or a notification channel) retries a failed event: doubling, capped."""

    backoff_s: float
    max_backoff_s: float
    max_attempts: int

    def retry_later(
        self,
        db: Database,
        receiver: str,
        *,
        at_id: int,
        attempts: int,
        problem: str,
        what: str,
        now: datetime,
        log: logging.Logger,
    ) -> float:
        """Log the failed try, store when to try again, and return the delay (seconds) before that try."""
        delay_s = min(self.backoff_s * 2 ** (attempts - 1), self.max_backoff_s)
        log.warning(
            "%s failed (%s); attempt %d of %d, retrying in %.1fs", what, problem, attempts, self.max_attempts, delay_s
        )
        with db.write() as conn:
            failed_attempt(
                conn,
                receiver,
                at_id=at_id,
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=delay_s),
                error=problem,
                now=now,
            )
        return delay_s
