"""API keys, the hash-chained audit trail, who registered and approved a version, approval-gated endpoints.

Revision ID: 0007_security
Revises: 0006_first_minute
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_security"
down_revision = "0006_first_minute"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("registered_by", sa.String(160), nullable=True))
        batch.add_column(sa.Column("approved_by", sa.String(160), nullable=True))
        batch.add_column(sa.Column("approved_at", Timestamp, nullable=True))
        batch.add_column(sa.Column("approval_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("vouched_by", sa.String(160), nullable=True))
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("require_approval", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("endpoints", Json, nullable=True),
        sa.Column("models", Json, nullable=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("before", Json, nullable=True),
        sa.Column("after", Json, nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_target", "audit_events", ["target"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_target", "audit_events")
    op.drop_table("audit_events")
    op.drop_table("api_keys")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("require_approval")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("vouched_by")
        batch.drop_column("approval_reason")
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
        batch.drop_column("registered_by")
