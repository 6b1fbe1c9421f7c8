"""The audit trail's use cases: every service records its changes here, in the change's own transaction.

``record`` is called inside a service's ``db.write()`` block, so a change and its audit event commit or
roll back together: there is never a change without its record, or a record of a change that did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from shipyard.core.audit import AuditEvent, ChainCheck, verify
from shipyard.core.identity import Actor
from shipyard.store import audit as repo
from shipyard.store.db import Database


def record(
    conn: Connection,
    actor: Actor,
    action: str,
    target: str,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event for a change made on ``conn`` (call it inside the change's transaction)."""
    event = AuditEvent(
        at=at or datetime.now(UTC),
        actor=actor.principal.label,
        action=action,
        target=target,
        address=actor.address,
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
        request_id=actor.request_id,
    )
    return repo.append(conn, event)


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def list(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        with self.db.read() as conn:
            return repo.events(conn, target=target, since=since, limit=limit)

    def verify(self) -> ChainCheck:
        with self.db.read() as conn:
            return verify(repo.chain(conn))
