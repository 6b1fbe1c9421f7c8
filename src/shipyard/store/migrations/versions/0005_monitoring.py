"""Monitoring: live window profiles per endpoint, version, window and serving worker.

Revision ID: 0005_monitoring
Revises: 0004_feedback
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_monitoring"
down_revision = "0004_feedback"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitor_windows",
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("version", sa.String(160), nullable=False),
        sa.Column("window_start", Timestamp, nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False),
        sa.Column("profile", Json, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "version", "window_start", "worker", name="pk_monitor_windows"),
    )
    op.create_index("ix_monitor_windows_endpoint_start", "monitor_windows", ["endpoint", "window_start"])


def downgrade() -> None:
    op.drop_index("ix_monitor_windows_endpoint_start", "monitor_windows")
    op.drop_table("monitor_windows")
