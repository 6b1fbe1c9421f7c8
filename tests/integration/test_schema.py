"""The migrations build exactly the tables ``store/tables.py`` declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from shipyard.store.db import Database
from shipyard.store.tables import metadata, webhook_outbox


def test_migrated_schema_matches_the_declared_tables(store_url: str) -> None:
    db = Database(store_url)
    try:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            differences = [d for d in compare_metadata(context, metadata) if not _sqlite_noise(d, db.dialect)]
        assert differences == []
    finally:
        db.dispose()


def test_timestamps_keep_their_instant_on_every_store(store_url: str) -> None:
    """An aware time with an offset is stored as the same instant, and read back in UTC."""
    db = Database(store_url)
    plus_two = datetime(2026, 11, 21, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    try:
        with db.write() as conn:
            conn.execute(sa.insert(webhook_outbox).values(endpoint="e", event="x", payload={}, created_at=plus_two))
        with db.read() as conn:
            stored = conn.execute(sa.select(webhook_outbox.c.created_at)).scalar_one()
            half_past_eight = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)
            later = conn.execute(
                sa.select(sa.func.count()).where(webhook_outbox.c.created_at >= half_past_eight)
            ).scalar_one()
        assert stored == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
        assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
        assert later == 0  # 08:00Z is before 08:30Z: comparisons use the instant too
    finally:
        db.dispose()


def _sqlite_noise(diff: object, dialect: str) -> bool:
    # SQLite cannot tell a server default of false from 0; the column and its NOT NULL are still compared.
    return dialect == "sqlite" and isinstance(diff, list) and all(d[0] == "modify_default" for d in diff)
