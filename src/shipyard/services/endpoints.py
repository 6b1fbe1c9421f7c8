"""Endpoint use cases: create, point at another version, list, show, delete."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.core.endpoints import Endpoint, TrafficPolicy
from shipyard.core.refs import ModelRef, check_model_name
from shipyard.core.versions import ModelVersion, VersionStatus
from shipyard.errors import ConflictError, EndpointNotFoundError
from shipyard.services.registry import RegistryService
from shipyard.store import endpoints as repo


@dataclass(frozen=True, slots=True)
class ResolvedEndpoint:
    """An endpoint with its ref resolved to the version that serves it now."""

    endpoint: Endpoint
    version: ModelVersion

    @property
    def policy(self) -> TrafficPolicy:
        return TrafficPolicy(stable=self.version.ref)


class EndpointService:
    def __init__(self, registry: RegistryService) -> None:
        self.registry = registry
        self.db = registry.db

    def _pin(self, model: str) -> tuple[str, ModelVersion]:
        """A bare name is pinned to today's latest version; versions and aliases are kept as given."""
        ref = ModelRef.parse(model)
        version = self.registry.get(ref)
        if version.status is VersionStatus.ARCHIVED:
            raise ConflictError(f"{version.ref} is archived; an endpoint cannot serve an archived version")
        return (version.ref if ref.is_latest else str(ref)), version

    def create(self, name: str, *, model: str, strict: bool = False) -> ResolvedEndpoint:
        check_model_name(name)
        pinned, version = self._pin(model)
        with self.db.write() as conn:
            endpoint = repo.create(conn, Endpoint(name, pinned, strict), self.registry.clock())
        return ResolvedEndpoint(endpoint, version)

    def set_model(self, name: str, *, model: str, strict: bool | None = None) -> ResolvedEndpoint:
        """Point an endpoint at another version; running servers swap to it once it is loaded and warm."""
        current = self.get(name)
        pinned, version = self._pin(model)
        with self.db.write() as conn:
            repo.update(
                conn,
                name,
                model=pinned,
                strict=current.strict if strict is None else strict,
                now=self.registry.clock(),
            )
        return ResolvedEndpoint(self.get(name), version)

    def get(self, name: str) -> Endpoint:
        with self.db.read() as conn:
            endpoint = repo.get(conn, name)
        if endpoint is None:
            raise EndpointNotFoundError(f"no endpoint named {name!r}; `shipyard endpoints list` shows the endpoints")
        return endpoint

    def list(self) -> list[Endpoint]:
        with self.db.read() as conn:
            return repo.list_all(conn)

    def resolve(self, endpoint: Endpoint) -> ResolvedEndpoint:
        return ResolvedEndpoint(endpoint, self.registry.get(endpoint.model))

    def delete(self, name: str) -> None:
        with self.db.write() as conn:
            if not repo.delete(conn, name):
                raise EndpointNotFoundError(f"no endpoint named {name!r}")
