"""Trust and calibration per version, feedback corrections with history, and the webhook outbox.

Revision ID: 0006_first_minute
Revises: 0005_monitoring
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_first_minute"
down_revision = "0005_monitoring"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
NullableJson = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("trusted", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("confidence_calibrator", Json, nullable=True))
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("corrections", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "feedback_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("label", NullableJson, nullable=True),
        sa.Column("reward", sa.Float, nullable=True),
        sa.Column("observed_at", Timestamp, nullable=False),
        sa.Column("replaced_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback_history"),
    )
    op.create_index("ix_feedback_history_endpoint_request", "feedback_history", ["endpoint", "request_id"])
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_outbox"),
    )
    op.create_index("ix_webhook_outbox_created_at", "webhook_outbox", ["created_at"])
    op.create_table(
        "webhook_receivers",
        sa.Column("receiver", sa.String(64), nullable=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", Timestamp, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("receiver", name="pk_webhook_receivers"),
    )


def downgrade() -> None:
    op.drop_table("webhook_receivers")
    op.drop_index("ix_webhook_outbox_created_at", "webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_index("ix_feedback_history_endpoint_request", "feedback_history")
    op.drop_table("feedback_history")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("corrections")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("confidence_calibrator")
        batch.drop_column("trusted")
