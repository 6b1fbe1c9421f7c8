"""Feedback repository: labels and rewards by (endpoint, request id, row); A/B rewards per arm in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
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
    """Store feedback; the same (endpoint, request id, row) again changes nothing and adds nothing.

    A later item for the same key fills in what it carries (a reward after a label, a corrected label),
    and keeps what it does not; the served version and arm, once known, are never overwritten.
    """
    if not items:
        return
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(feedback)
    new = insert.excluded
    stmt = insert.on_conflict_do_update(
        index_elements=["endpoint", "request_id", "row"],
        set_={
            "label": sa.func.coalesce(new.label, feedback.c.label),
            "reward": sa.func.coalesce(new.reward, feedback.c.reward),
            "observed_at": new.observed_at,
            "version": sa.func.coalesce(feedback.c.version, new.version),
            "arm": sa.func.coalesce(feedback.c.arm, new.arm),
        },
    )
    conn.execute(
        stmt,
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


def items(
    conn: Connection, endpoint: str, *, since: datetime | None = None, until: datetime | None = None
) -> list[FeedbackItem]:
    """Every feedback item for ``endpoint`` observed in [since, until), oldest first."""
    query = sa.select(feedback).where(feedback.c.endpoint == endpoint)
    if since is not None:
        query = query.where(feedback.c.observed_at >= since)
    if until is not None:
        query = query.where(feedback.c.observed_at < until)
    rows = conn.execute(query.order_by(feedback.c.observed_at, feedback.c.id))
    return [
        FeedbackItem(r.endpoint, r.request_id, _utc(r.observed_at), r.row, r.version, r.arm, r.label, r.reward)
        for r in rows
    ]


def fill_served(conn: Connection, endpoint: str, served: list[tuple[str, int, str, str]]) -> None:
    """Fill in version and arm of feedback given before its prediction was known: (request id, row, version, arm)."""
    for request_id, row, version, arm in served:
        conn.execute(
            sa.update(feedback)
            .where(
                feedback.c.endpoint == endpoint,
                feedback.c.request_id == request_id,
                feedback.c.row == row,
                feedback.c.version.is_(None),
            )
            .values(version=version, arm=arm)
        )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def unserved(conn: Connection, endpoint: str, since: datetime, limit: int = 50_000) -> list[tuple[str, int]]:
    """(request id, row) of feedback whose served version is not known yet, observed since ``since``."""
    rows = conn.execute(
        sa.select(feedback.c.request_id, feedback.c.row)
        .where(feedback.c.endpoint == endpoint, feedback.c.version.is_(None), feedback.c.observed_at >= since)
        .limit(limit)
    )
    return [(r.request_id, r.row) for r in rows]
