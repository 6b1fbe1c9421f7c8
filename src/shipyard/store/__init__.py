"""The control-plane store: SQLAlchemy tables, Alembic migrations and repositories."""

from shipyard.store.db import Database

__all__ = ["Database"]
