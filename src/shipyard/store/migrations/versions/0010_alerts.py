"""Alert rules, their evaluated state and history, silences, and notification channels.

Revision ID: 0010_alerts
Revises: 0009_validation_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010_alerts"
down_revision = "0009_validation_jobs"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_alert_rules"),
    )
    op.create_table(
        "alert_states",
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("group_key", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("labels", Json, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("held", sa.Integer, nullable=False, server_default="0"),
        sa.Column("since", Timestamp, nullable=False),
        sa.Column("evaluated_at", Timestamp, nullable=False),
        sa.Column("fired_at", Timestamp, nullable=True),
        sa.Column("resolved_at", Timestamp, nullable=True),
        # The start of the last stored window evaluated: consecutive windows count toward ``for``, a restart
        # resumes after it. ``notified``: a firing notification went out (de-duplication, silences).
        sa.Column("window_start", Timestamp, nullable=True),
        sa.Column("notified", sa.Boolean, nullable=False, server_default=sa.false()),
        # The rule's action for this firing: waiting (for an ack), done or failed, and what it did or why not.
        sa.Column("action_state", sa.String(16), nullable=True),
        sa.Column("action_detail", Json, nullable=True),
        sa.PrimaryKeyConstraint("rule", "group_key", name="pk_alert_states"),
    )
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("group_key", sa.String(256), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("detail", Json, nullable=True),
        sa.Column("at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_history"),
        sa.Index("ix_alert_history_rule", "rule"),
    )
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("matchers", Json, nullable=True),
        sa.Column("starts_at", Timestamp, nullable=False),
        sa.Column("ends_at", Timestamp, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("expired_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_silences"),
    )
    op.create_table(
        "notification_channels",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("config", Json, nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_notification_channels"),
    )


def downgrade() -> None:
    op.drop_table("notification_channels")
    op.drop_table("alert_silences")
    op.drop_table("alert_history")
    op.drop_table("alert_states")
    op.drop_table("alert_rules")
