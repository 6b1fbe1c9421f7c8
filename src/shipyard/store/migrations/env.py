"""Alembic environment: always run on a connection handed over by ``Database.migrate``."""

from __future__ import annotations

from alembic import context

from shipyard.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Shipyard migrations run through 'shipyard db upgrade', not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
