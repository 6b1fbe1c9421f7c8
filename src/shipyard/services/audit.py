"""The audit trail's use cases: every service records its changes here, in the change's own transaction.

``record`` is called inside a service's ``db.write()`` block, so a change and its audit event commit or
roll back together: there is never a change without its record, or a record of a change that did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from shipyard.core.audit import AuditEvent, ChainCheck, verify
from shipyard.core.identity import Actor
from shipyard.errors import InvalidArgumentError
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


MAX_LIST = 10_000
"""The most events one listing returns (the newest); ``verify`` reads the whole trail in batches instead."""


def since_cutoff(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """``7d``, ``12h``, ``30m`` (as ``audit list --since`` and ``GET /v1/audit?since=`` take them) to a time."""
    if text is None or not text.strip():
        return None
    from shipyard.rollouts.spec import parse_duration

    seconds = parse_duration(text, option="since")
    if not 0 < seconds <= 100 * 365 * 86400:
        raise InvalidArgumentError(f"since must be a positive duration such as 7d or 12h, got {text!r}")
    return (now or datetime.now(UTC)) - timedelta(seconds=seconds)


SETTINGS_TARGET = "settings"


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def list(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        """Oldest first; with ``limit``, the newest ``limit`` events (at most ``MAX_LIST`` in any case)."""
        if limit is not None and not 1 <= limit <= MAX_LIST:
            raise InvalidArgumentError(f"limit must be between 1 and {MAX_LIST}, got {limit}")
        if target is not None and not 0 < len(target) <= 256:
            raise InvalidArgumentError("target must be 1 to 256 characters, e.g. fraud, model:fraud:3 or key:ci")
        with self.db.read() as conn:
            return repo.events(conn, target=target, since=since, limit=limit or MAX_LIST)

    def record_settings(self, settings: Mapping[str, Any], *, actor: Actor) -> AuditEvent | None:
        """Record the behaviour settings a server starts with, when they differ from the last ones recorded.

        Settings live in the environment and ``shipyard.toml``, not in the store, so the first server to start
        with changed ones records the change (before and after); a restart with the same settings adds nothing.
        """
        with self.db.write() as conn:
            repo.lock_chain(conn)  # two servers starting together record one change, not two
            last = repo.latest(conn, action="settings.change", target=SETTINGS_TARGET)
            previous = dict(last.after) if last is not None and last.after is not None else None
            if previous == dict(settings):
                return None
            return record(conn, actor, "settings.change", SETTINGS_TARGET, before=previous, after=settings)

    def verify(self) -> ChainCheck:
        with self.db.read() as conn:
            return verify(repo.chain(conn))
