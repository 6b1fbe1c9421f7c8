"""Listings read straight from the store: `shipyard models list` and `shipyard endpoints list`.

A listing is a read of a few rows. Going through the workspace would import every service and, with
them, pandas, scikit-learn and the flavors: most of a second before the first row is printed. These
reads need only SQLAlchemy and the store's repositories, so a list command answers in a fraction of
that. Everything that changes the store, and every read that needs a model, goes through the services.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.core.refs import ModelRef
from shipyard.errors import ModelNotFoundError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shipyard.core.endpoints import Endpoint
    from shipyard.core.versions import ModelSummary, ModelVersion
    from shipyard.store.db import Database


@dataclass(frozen=True, slots=True)
class EndpointListing:
    """An endpoint and the version its ref names now (None when its alias points nowhere)."""

    endpoint: Endpoint
    serves: str | None


class Catalog:
    """Read-only views of the registry and the endpoints over one store connection pool."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls) -> Catalog:
        """The store named by the settings (read now), migrated on first use as the workspace would."""
        from shipyard.config import Settings
        from shipyard.store.db import Database

        return cls(Database(Settings.load().database_url))

    def close(self) -> None:
        self.db.dispose()

    def models(self) -> list[ModelSummary]:
        from shipyard.store import registry

        with self.db.read() as conn:
            return registry.list_models(conn)

    def versions(self, name: str) -> list[ModelVersion]:
        from shipyard.store import registry

        with self.db.read() as conn:
            versions = registry.list_versions(conn, name)
        if not versions:
            raise ModelNotFoundError(f"no model named {name!r}; `shipyard models list` shows the registered models")
        return versions

    def endpoints(self) -> list[EndpointListing]:
        from shipyard.store import endpoints

        with self.db.read() as conn:
            return [EndpointListing(e, _serves(conn, e.model)) for e in endpoints.list_all(conn)]


def _serves(conn: Connection, model: str) -> str | None:
    """The version a ref names now: itself when pinned, the alias's target, or the latest version."""
    from shipyard.store import registry

    ref = ModelRef.parse(model)
    if ref.version is not None:
        return f"{ref.name}:{ref.version}"
    number = (
        registry.alias_target(conn, ref.name, ref.alias)
        if ref.alias is not None
        else registry.latest_active_version(conn, ref.name)
    )
    return None if number is None else f"{ref.name}:{number}"
