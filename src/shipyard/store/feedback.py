"""Feedback repository: labels and rewards by (endpoint, request id, row), the values corrections replaced, and
A/B rewards per arm in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from shipyard.store.tables import feedback, feedback_history


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
    corrections: int = 0


@dataclass(frozen=True, slots=True)
class Replaced:
    """A value an explicit correction replaced, with when it had been observed and when it was replaced."""

    endpoint: str
    request_id: str
    row: int
    label: Any
    reward: float | None
    observed_at: datetime
    replaced_at: datetime


_CHUNK = 500  # request ids per IN (...) list, well under every database's limit on bound parameters


def record(conn: Connection, items: list[FeedbackItem], now: datetime) -> None:
    """Store the items whose (endpoint, request id, row) is new; rows already stored are left as they are.

    Items go in key order, so two overlapping batches on PostgreSQL wait for each other's keys in one order.
    """
    if items:
        _insert_new(conn, items, now, returning=False)


def _insert_new(conn: Connection, items: list[FeedbackItem], now: datetime, *, returning: bool) -> set[tuple[str, int]]:
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(feedback)
    statement = insert.on_conflict_do_nothing(index_elements=["endpoint", "request_id", "row"])
    if returning:
        statement = statement.returning(feedback.c.request_id, feedback.c.row)
    stored = conn.execute(
        statement,
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
            for i in sorted(items, key=lambda i: (i.endpoint, i.request_id, i.row))
        ],
    )
    return {(r.request_id, r.row) for r in stored} if returning else set()


def claim(conn: Connection, items: list[FeedbackItem], now: datetime) -> dict[tuple[str, int], FeedbackItem]:
    """Store the items whose (request id, row) is new, then lock and return every item's row as it now stands.

    All items are for one endpoint. The caller decides in the same transaction what the rest may change, and
    no concurrent writer can change those rows in between: SQLite's write transaction holds the database,
    and on PostgreSQL the insert waits for a concurrent insert of the same key to commit, after which
    ``FOR UPDATE`` locks the committed row.
    """
    if not items:
        return {}
    endpoint = items[0].endpoint
    postgres = conn.dialect.name == "postgresql"
    # RETURNING names the rows just stored, but on PostgreSQL it makes a large batch several times slower
    # (SQLAlchemy then renders multi-row VALUES that psycopg parses in Python); there every row is read back.
    inserted = _insert_new(conn, items, now, returning=not postgres)
    found = {(i.request_id, i.row): i for i in items if (i.request_id, i.row) in inserted}
    wanted = {(i.request_id, i.row) for i in items} - set(found)
    request_ids = sorted({request_id for request_id, _ in wanted})
    if postgres:  # one array parameter: an IN list of thousands is slow to send through psycopg
        chunks = [feedback.c.request_id == sa.any_(sa.bindparam("ids", request_ids, type_=ARRAY(sa.String)))]
    else:
        chunks = [feedback.c.request_id.in_(request_ids[i : i + _CHUNK]) for i in range(0, len(request_ids), _CHUNK)]
    for condition in chunks if request_ids else []:
        query = (
            sa.select(feedback)
            .where(feedback.c.endpoint == endpoint, condition)
            .order_by(feedback.c.request_id, feedback.c.row)
            .with_for_update()
        )
        for r in conn.execute(query):
            if (r.request_id, r.row) in wanted:
                found[(r.request_id, r.row)] = _item(r)
    return found


def fill(conn: Connection, items: list[FeedbackItem]) -> None:
    """Give empty fields the items' values (a label after a reward, or the reverse); nothing is replaced."""
    if items:
        conn.execute(
            _update_row().values(
                label=sa.func.coalesce(feedback.c.label, sa.bindparam("new_label", type_=feedback.c.label.type)),
                reward=sa.func.coalesce(feedback.c.reward, sa.bindparam("new_reward", type_=sa.Float)),
                observed_at=sa.bindparam("new_observed_at", type_=feedback.c.observed_at.type),
            ),
            [_params(i) for i in items],
        )


def correct(conn: Connection, corrections: list[tuple[FeedbackItem, FeedbackItem]], now: datetime) -> None:
    """Replace stored values with corrected ones: (stored, new) pairs; the old values go to the history.

    A field the correction does not carry keeps its value; each corrected row counts one more correction.
    """
    if not corrections:
        return
    conn.execute(
        sa.insert(feedback_history),
        [
            {
                "endpoint": old.endpoint,
                "request_id": old.request_id,
                "row": old.row,
                "label": old.label,
                "reward": old.reward,
                "observed_at": old.observed_at,
                "replaced_at": now,
            }
            for old, _ in corrections
        ],
    )
    conn.execute(
        _update_row().values(
            label=sa.func.coalesce(sa.bindparam("new_label", type_=feedback.c.label.type), feedback.c.label),
            reward=sa.func.coalesce(sa.bindparam("new_reward", type_=sa.Float), feedback.c.reward),
            observed_at=sa.bindparam("new_observed_at", type_=feedback.c.observed_at.type),
            corrections=feedback.c.corrections + 1,
        ),
        [_params(new) for _, new in corrections],
    )


def history(conn: Connection, endpoint: str, request_id: str | None = None) -> list[Replaced]:
    """Every value corrections replaced for ``endpoint`` (one request's, when given), oldest first."""
    query = sa.select(feedback_history).where(feedback_history.c.endpoint == endpoint)
    if request_id is not None:
        query = query.where(feedback_history.c.request_id == request_id)
    rows = conn.execute(query.order_by(feedback_history.c.id))
    return [
        Replaced(r.endpoint, r.request_id, r.row, r.label, r.reward, _utc(r.observed_at), _utc(r.replaced_at))
        for r in rows
    ]


def _update_row() -> sa.Update:
    return sa.update(feedback).where(
        feedback.c.endpoint == sa.bindparam("key_endpoint"),
        feedback.c.request_id == sa.bindparam("key_request_id"),
        feedback.c.row == sa.bindparam("key_row"),
    )


def _params(item: FeedbackItem) -> dict[str, Any]:
    return {
        "key_endpoint": item.endpoint,
        "key_request_id": item.request_id,
        "key_row": item.row,
        "new_label": item.label,
        "new_reward": item.reward,
        "new_observed_at": item.observed_at,
    }


def _item(r: Any) -> FeedbackItem:
    return FeedbackItem(
        r.endpoint, r.request_id, _utc(r.observed_at), r.row, r.version, r.arm, r.label, r.reward, r.corrections
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
    conn: Connection,
    endpoint: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    request_id: str | None = None,
) -> list[FeedbackItem]:
    """Every feedback item for ``endpoint`` observed in [since, until) (one request's, when given), oldest first."""
    query = sa.select(feedback).where(feedback.c.endpoint == endpoint)
    if request_id is not None:
        query = query.where(feedback.c.request_id == request_id)
    if since is not None:
        query = query.where(feedback.c.observed_at >= since)
    if until is not None:
        query = query.where(feedback.c.observed_at < until)
    rows = conn.execute(query.order_by(feedback.c.observed_at, feedback.c.request_id, feedback.c.row))
    return [_item(r) for r in rows]


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
