"""Window profiles repository: each worker upserts its partial windows; readers get every row to merge."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shipyard.monitoring.window import StoredWindow
from shipyard.store.tables import monitor_windows


def upsert_windows(conn: Connection, windows: Sequence[StoredWindow], now: datetime) -> None:
    """Replace each worker's previous flush of the same window with its running totals."""
    if not windows:
        return
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(monitor_windows)
    stmt = insert.on_conflict_do_update(
        index_elements=["endpoint", "version", "window_start", "worker"],
        set_={"profile": insert.excluded.profile, "window_seconds": insert.excluded.window_seconds, "updated_at": now},
    )
    conn.execute(
        stmt,
        [
            {
                "endpoint": w.endpoint,
                "version": w.version,
                "window_start": w.start,
                "worker": w.worker,
                "window_seconds": w.seconds,
                "profile": dict(w.profile),
                "updated_at": now,
            }
            for w in windows
        ],
    )


def windows(
    conn: Connection, endpoint: str, *, since: datetime, until: datetime, version: str | None = None
) -> list[StoredWindow]:
    """Every worker's rows for windows starting in [since, until), oldest first."""
    query = sa.select(monitor_windows).where(
        monitor_windows.c.endpoint == endpoint,
        monitor_windows.c.window_start >= since,
        monitor_windows.c.window_start < until,
    )
    if version is not None:
        query = query.where(monitor_windows.c.version == version)
    rows = conn.execute(query.order_by(monitor_windows.c.window_start))
    return [
        StoredWindow(r.endpoint, r.version, _utc(r.window_start), r.window_seconds, r.worker, r.profile) for r in rows
    ]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
