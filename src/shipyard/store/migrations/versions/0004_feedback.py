"""Feedback: labels and rewards joined to predictions by request id (and row).

Revision ID: 0004_feedback
Revises: 0003_rollouts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_feedback"
down_revision = "0003_rollouts"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row", sa.Integer, nullable=False, server_default="0"),
        sa.Column("version", sa.String(160), nullable=True),
        sa.Column("arm", sa.String(16), nullable=True),
        sa.Column("label", Json, nullable=True),
        sa.Column("reward", sa.Float, nullable=True),
        sa.Column("observed_at", Timestamp, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("endpoint", "request_id", "row", name="uq_feedback_endpoint_request_row"),
    )
    op.create_index("ix_feedback_endpoint_observed_at", "feedback", ["endpoint", "observed_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_endpoint_observed_at", "feedback")
    op.drop_table("feedback")
