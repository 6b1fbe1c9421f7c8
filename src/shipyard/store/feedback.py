"""Feedback repository: the rewards an A/B test reads, per arm, through one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shipyard.store.tables import feedback


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    endpoint: str
    request_id: str
    observed_at: datetime
    row: int = 0
    version: str | None = None
    arm: str | None = None
    label: Any = None
    reward: float | None = None


def record(conn: Connection, items: list[FeedbackItem], now: datetime) -> None:
    """Store feedback; the same (endpoint, request id, row) again replaces nothing and adds nothing."""
    if not items:
        return
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(feedback)
    conn.execute(
        insert.on_conflict_do_nothing(index_elements=["endpoint", "request_id", "row"]),
        [
            {
                "endpoint": i.endpoint,
                "request_id": i.request_id,
                "row": i.row,
                "version": i.version,
                "arm": i.arm,
                "label": i.label,
                "reward": i.reward,
                "observed_at": i.observed_at,
                "created_at": now,
            }
            for i in items
        ],
    )


def reward_moments(conn: Connection, endpoint: str, since: datetime) -> dict[str, tuple[int, float, float]]:
    """(n, sum, sum of squares) of rewards per arm observed since ``since``: an A/B test's sufficient statistics."""
    rows = conn.execute(
        sa.select(
            feedback.c.arm,
            sa.func.count(feedback.c.reward),
            sa.func.coalesce(sa.func.sum(feedback.c.reward), 0.0),
            sa.func.coalesce(sa.func.sum(feedback.c.reward * feedback.c.reward), 0.0),
        )
        .where(
            feedback.c.endpoint == endpoint,
            feedback.c.observed_at >= since,
            feedback.c.reward.is_not(None),
            feedback.c.arm.is_not(None),
        )
        .group_by(feedback.c.arm)
    )
    return {row[0]: (int(row[1]), float(row[2]), float(row[3])) for row in rows}
