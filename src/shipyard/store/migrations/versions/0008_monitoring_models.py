"""Monitoring models a version carries besides its calibrator: the loss model that estimates a regressor's
error without labels (DLE) and the novelty model that scores each served row as an outlier.

Revision ID: 0008_monitoring_models
Revises: 0007_security
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008_monitoring_models"
down_revision = "0007_security"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("loss_model", Json, nullable=True))
        batch.add_column(sa.Column("outlier_model", Json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("outlier_model")
        batch.drop_column("loss_model")
