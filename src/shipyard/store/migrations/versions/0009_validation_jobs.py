"""Validation runs stored as a version's evidence, how a model is trained, and retraining jobs.

Revision ID: 0009_validation_jobs
Revises: 0008_monitoring_models
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009_validation_jobs"
down_revision = "0008_monitoring_models"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("trainer", Json, nullable=True))
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("require_validation", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "validations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("champion", sa.String(160), nullable=True),
        sa.Column("result", Json, nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_validations"),
        sa.Index("ix_validations_model_version", "model", "version"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("cause", Json, nullable=True),
        sa.Column("result", Json, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("log", sa.Text, nullable=False, server_default=""),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("heartbeat_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.Index("ix_jobs_model_state", "model", "state"),
    )


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("validations")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("require_validation")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("trainer")
