"""Rollouts: state and event history, per-worker evidence, the active rollout per endpoint, leases.

Revision ID: 0003_rollouts
Revises: 0002_endpoints
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003_rollouts"
down_revision = "0002_endpoints"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", Json, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
    )
    op.create_index("ix_rollouts_endpoint", "rollouts", ["endpoint"])
    op.create_table(
        "active_rollouts",
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("rollout_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name="pk_active_rollouts"),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name="fk_active_rollouts_rollout_id_rollouts", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "rollout_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rollout_id", sa.String(32), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("evidence", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_events"),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name="fk_rollout_events_rollout_id_rollouts", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_rollout_events_rollout_id", "rollout_events", ["rollout_id"])
    op.create_table(
        "rollout_evidence",
        sa.Column("rollout_id", sa.String(32), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("arm", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("evidence", Json, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("rollout_id", "step", "arm", "worker", name="pk_rollout_evidence"),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name="fk_rollout_evidence_rollout_id_rollouts", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("rollout_evidence")
    op.drop_index("ix_rollout_events_rollout_id", "rollout_events")
    op.drop_table("rollout_events")
    op.drop_table("active_rollouts")
    op.drop_index("ix_rollouts_endpoint", "rollouts")
    op.drop_table("rollouts")
