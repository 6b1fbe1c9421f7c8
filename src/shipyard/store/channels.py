"""Notification channels repository: the declarations, and each channel's cursor among the outbox's receivers.

A channel's progress is a row of ``webhook_receivers`` keyed ``channel:NAME``: the same cursor, retry state
and counters as a webhook URL's, so pruning the outbox waits for channels exactly as it waits for URLs. The
row is made with the channel (at the outbox's current end: a new channel gets what happens from now on) and
removed with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.store import outbox
from shipyard.store.tables import notification_channels, webhook_receivers


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """A stored declaration: ``config`` is ``{"options": …, "severities": […], "endpoints": […]}``."""

    name: str
    kind: str
    config: Mapping[str, Any]
    created_by: str
    created_at: datetime


def _row(r: Any) -> ChannelRow:
    return ChannelRow(r.name, r.kind, r.config, r.created_by, r.created_at)


def get(conn: Connection, name: str) -> ChannelRow | None:
    found = conn.execute(sa.select(notification_channels).where(notification_channels.c.name == name)).first()
    return _row(found) if found is not None else None


def all_channels(conn: Connection) -> list[ChannelRow]:
    return [_row(r) for r in conn.execute(sa.select(notification_channels).order_by(notification_channels.c.name))]


def insert(conn: Connection, row: ChannelRow, *, receiver: str) -> None:
    """Store the channel and give it a cursor at the outbox's end (a stale cursor of that name is replaced)."""
    conn.execute(
        sa.insert(notification_channels).values(
            name=row.name, kind=row.kind, config=dict(row.config), created_by=row.created_by, created_at=row.created_at
        )
    )
    conn.execute(sa.delete(webhook_receivers).where(webhook_receivers.c.receiver == receiver))
    outbox.register(conn, [receiver], row.created_at)


def delete(conn: Connection, name: str, *, receiver: str) -> bool:
    gone = conn.execute(sa.delete(notification_channels).where(notification_channels.c.name == name)).rowcount
    conn.execute(sa.delete(webhook_receivers).where(webhook_receivers.c.receiver == receiver))
    return bool(gone)


def skip(conn: Connection, receiver: str, *, from_id: int, to_id: int, now: datetime) -> bool:
    """Move the cursor past events the channel does not take (not alerts, or filtered out), counting none.

    Only from ``from_id``, as ``outbox.advance``: False when another process moved it first.
    """
    moved = conn.execute(
        sa.update(webhook_receivers)
        .where(webhook_receivers.c.receiver == receiver, webhook_receivers.c.last_id == from_id)
        .values(last_id=to_id, attempts=0, next_attempt_at=None, updated_at=now)
    )
    return moved.rowcount == 1
