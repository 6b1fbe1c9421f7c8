"""Audit trail repository: append an event to the hash chain inside the caller's transaction, read it back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.core.audit import GENESIS, AuditEvent, chained
from shipyard.store.tables import audit_events

# Any constant: on PostgreSQL appends take this transaction-scoped advisory lock, so two concurrent changes
# cannot both link to the same last event. SQLite's write transactions are serialised already.
_CHAIN_LOCK = 0x5A1A_AD17


def lock_chain(conn: Connection) -> None:
    """Hold the chain until the transaction ends (PostgreSQL; SQLite's write transaction already does)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})


def latest(conn: Connection, *, action: str, target: str) -> AuditEvent | None:
    """The newest event of this action on this target, if any."""
    row = conn.execute(
        sa.select(audit_events)
        .where(audit_events.c.action == action, audit_events.c.target == target)
        .order_by(audit_events.c.id.desc())
        .limit(1)
    ).first()
    return _to_event(row) if row is not None else None


def append(conn: Connection, event: AuditEvent) -> AuditEvent:
    """Link ``event`` after the last one and insert it, in the caller's transaction (so with the change)."""
    lock_chain(conn)  # a lock taken twice in one transaction is held once
    last = conn.execute(sa.select(audit_events.c.hash).order_by(audit_events.c.id.desc()).limit(1)).scalar()
    linked = chained(event, last or GENESIS)
    new_id = conn.execute(
        sa.insert(audit_events)
        .values(
            at=linked.at,
            actor=linked.actor,
            address=linked.address,
            action=linked.action,
            target=linked.target,
            before=linked.before,
            after=linked.after,
            request_id=linked.request_id,
            prev_hash=linked.prev_hash,
            hash=linked.hash,
        )
        .returning(audit_events.c.id)
    ).scalar_one()
    return AuditEvent(**{**{n: getattr(linked, n) for n in AuditEvent.__slots__}, "id": int(new_id)})


def _to_event(row: Any) -> AuditEvent:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return AuditEvent(
        at, row.actor, row.action, row.target, row.address, row.before, row.after, row.request_id,
        row.prev_hash, row.hash, int(row.id),
    )  # fmt: skip


def events(
    conn: Connection, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
) -> list[AuditEvent]:
    """Newest last. ``target`` matches as ``target_matches`` says (``fraud`` finds ``model:fraud:3``)."""
    query = sa.select(audit_events).order_by(audit_events.c.id)
    if since is not None:
        query = query.where(audit_events.c.at >= since)
    if target is not None:
        # The database narrows by substring; the exact rule runs here, then the newest ``limit`` are kept.
        query = query.where(audit_events.c.target.contains(target, autoescape=True))
        found = [_to_event(r) for r in conn.execute(query) if target_matches(r.target, target)]
        return found[-limit:] if limit is not None else found
    if limit is not None:
        query = query.order_by(None).order_by(audit_events.c.id.desc()).limit(limit)
        return list(reversed([_to_event(r) for r in conn.execute(query)]))
    return [_to_event(r) for r in conn.execute(query)]


def target_matches(target: str, wanted: str) -> bool:
    """Targets are ``KIND:NAME[:...|@...]`` (``model:fraud:3``, ``model:fraud@champion``, ``endpoint:fraud``).

    ``wanted`` matches a whole target or the part after its kind, exactly or up to a ':' or '@' that follows:
    ``fraud`` finds all three above, ``model:fraud`` the model's, ``fraud:3`` only that version's.
    """
    for candidate in (target, target.partition(":")[2]):
        if candidate == wanted or candidate.startswith((f"{wanted}:", f"{wanted}@")):
            return True
    return False


def chain(conn: Connection, batch: int = 1000) -> Iterator[AuditEvent]:
    """Every event in id order, read in batches so verifying a long trail does not hold it all in memory."""
    after = 0
    while True:
        rows = conn.execute(
            sa.select(audit_events).where(audit_events.c.id > after).order_by(audit_events.c.id).limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield _to_event(row)
        after = int(rows[-1].id)
