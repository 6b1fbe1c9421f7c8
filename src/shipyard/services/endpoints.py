"""Endpoint use cases: create, point at another version, list, show, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.core.endpoints import Endpoint, TrafficPolicy
from shipyard.core.identity import LOCAL_ACTOR, Actor
from shipyard.core.refs import ModelRef, check_model_name
from shipyard.core.versions import ModelVersion, VersionStatus, check_approved
from shipyard.errors import ConflictError, EndpointNotFoundError
from shipyard.services.audit import record
from shipyard.services.registry import RegistryService
from shipyard.services.validation_rule import check_validated
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

    def create(
        self,
        name: str,
        *,
        model: str,
        strict: bool = False,
        require_approval: bool = False,
        require_validation: bool = False,
        actor: Actor = LOCAL_ACTOR,
    ) -> ResolvedEndpoint:
        """A new endpoint; with ``require_approval`` it only ever serves approved versions, with
        ``require_validation`` validated ones (409 otherwise)."""
        check_model_name(name)
        pinned, version = self._pin(model)
        if require_approval:
            check_approved(version, endpoint=name, action="serve")
        with self.db.write() as conn:
            if require_validation:
                check_validated(conn, version, endpoint=name, action="serve")
            made = Endpoint(
                name, pinned, strict, require_approval=require_approval, require_validation=require_validation
            )
            endpoint = repo.create(conn, made, self.registry.clock())
            record(conn, actor, "endpoint.create", endpoint_target(name), after=_audit_view(endpoint, version))
        return ResolvedEndpoint(endpoint, version)

    def set_model(
        self,
        name: str,
        *,
        model: str,
        strict: bool | None = None,
        require_approval: bool | None = None,
        require_validation: bool | None = None,
        actor: Actor = LOCAL_ACTOR,
    ) -> ResolvedEndpoint:
        """Point an endpoint at another version; running servers swap to it once it is loaded and warm.

        ``strict``, ``require_approval`` and ``require_validation`` left as None keep their current values.
        """
        current = self.get(name)
        pinned, version = self._pin(model)
        required = current.require_approval if require_approval is None else require_approval
        validated = current.require_validation if require_validation is None else require_validation
        if required:
            check_approved(version, endpoint=name, action="serve")
        with self.db.write() as conn:
            if validated:
                check_validated(conn, version, endpoint=name, action="serve")
            before = repo.get(conn, name)
            if before is None:
                raise EndpointNotFoundError(
                    f"no endpoint named {name!r}; `shipyard endpoints list` shows the endpoints"
                )
            repo.update(
                conn,
                name,
                model=pinned,
                strict=current.strict if strict is None else strict,
                require_approval=required,
                require_validation=validated,
                now=self.registry.clock(),
            )
            after = repo.get(conn, name)
            if after is not None:
                record(
                    conn,
                    actor,
                    "endpoint.set",
                    endpoint_target(name),
                    before=_audit_view(before, None),
                    after=_audit_view(after, version),
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

    def delete(self, name: str, *, actor: Actor = LOCAL_ACTOR) -> None:
        with self.db.write() as conn:
            before = repo.get(conn, name)
            if before is None or not repo.delete(conn, name):
                raise EndpointNotFoundError(f"no endpoint named {name!r}")
            record(conn, actor, "endpoint.delete", endpoint_target(name), before=_audit_view(before, None))


def endpoint_target(name: str) -> str:
    """The audit target of an endpoint and of what happens on it (rollouts, feedback): ``endpoint:fraud``."""
    return f"endpoint:{name}"


def _audit_view(endpoint: Endpoint, version: ModelVersion | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "model": endpoint.model,
        "strict": endpoint.strict,
        "require_approval": endpoint.require_approval,
        "require_validation": endpoint.require_validation,
    }
    if version is not None:
        view["version"] = version.ref
    return view
