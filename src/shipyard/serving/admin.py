"""Admin routes over the same services the CLI uses: endpoints, the registry, approvals and the audit trail.

Every change passes the caller (``actor_of``) to its service, which records it in the audit trail.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.core.endpoints import Endpoint
from shipyard.errors import ShipyardError
from shipyard.services.audit import MAX_LIST, since_cutoff
from shipyard.serving.auth import actor_of
from shipyard.workspace import Workspace


class EndpointCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128, examples=["fraud"])
    model: str = Field(min_length=1, max_length=256, examples=["fraud:3", "fraud@champion"])
    strict: bool = False
    require_approval: bool = Field(False, description="serve, follow and roll out to approved versions only")
    require_validation: bool = Field(False, description="serve, roll out to and approve validated versions only")


class EndpointUpdate(BaseModel):
    model: str = Field(min_length=1, max_length=256, examples=["fraud:4"])
    strict: bool | None = None
    require_approval: bool | None = None
    require_validation: bool | None = None


class Approve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=2000, examples=["AUC 0.93 on the March holdout; reviewed by risk"])


def _endpoint(endpoint: Endpoint, version: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": endpoint.name,
        "model": endpoint.model,
        "strict": endpoint.strict,
        "require_approval": endpoint.require_approval,
        "require_validation": endpoint.require_validation,
        "created_at": endpoint.created_at.isoformat() if endpoint.created_at else None,
        "updated_at": endpoint.updated_at.isoformat() if endpoint.updated_at else None,
    }
    if version is not None:
        out["version"] = version
    return out


def admin_router(workspace: Workspace) -> APIRouter:
    """Sync handlers: FastAPI runs them in its thread pool, so store I/O never blocks the event loop."""
    router = APIRouter(prefix="/v1", tags=["admin"])
    endpoints = workspace.endpoints
    registry = workspace.registry

    @router.get("/endpoints")
    def list_endpoints() -> list[dict[str, Any]]:
        """Every endpoint, with the version its model names now (None when that no longer resolves)."""
        return [_endpoint(e, _serves(e)) for e in endpoints.list()]

    def _serves(endpoint: Endpoint) -> str | None:
        try:
            return endpoints.resolve(endpoint).version.ref
        except ShipyardError:  # an alias removed or a version archived under it: listed all the same
            return None

    @router.post("/endpoints", status_code=201)
    def create_endpoint(body: EndpointCreate, request: Request) -> dict[str, Any]:
        resolved = endpoints.create(
            body.name,
            model=body.model,
            strict=body.strict,
            require_approval=body.require_approval,
            require_validation=body.require_validation,
            actor=actor_of(request),
        )
        return _endpoint(resolved.endpoint, resolved.version.ref)

    @router.get("/endpoints/{name}")
    def show_endpoint(name: str) -> dict[str, Any]:
        resolved = endpoints.resolve(endpoints.get(name))
        return _endpoint(resolved.endpoint, resolved.version.ref)

    @router.put("/endpoints/{name}")
    def update_endpoint(name: str, body: EndpointUpdate, request: Request) -> dict[str, Any]:
        resolved = endpoints.set_model(
            name,
            model=body.model,
            strict=body.strict,
            require_approval=body.require_approval,
            require_validation=body.require_validation,
            actor=actor_of(request),
        )
        return _endpoint(resolved.endpoint, resolved.version.ref)

    @router.delete("/endpoints/{name}", status_code=204)
    def delete_endpoint(name: str, request: Request) -> None:
        endpoints.delete(name, actor=actor_of(request))

    @router.get("/models")
    def list_models() -> list[dict[str, Any]]:
        return [
            {
                "name": m.name,
                "latest_version": m.latest_version,
                "versions": m.versions,
                "aliases": dict(m.aliases),
                "created_at": m.created_at.isoformat(),
                "updated_at": m.updated_at.isoformat(),
            }
            for m in registry.list_models()
        ]

    @router.get("/models/{ref}")
    def show_model(ref: str) -> dict[str, Any]:
        version = registry.get(ref)
        card = version.to_dict()
        card.pop("reference_profile", None)
        card["identical_to"] = registry.identical_versions(version)
        return card

    @router.post("/models/{ref}/approve", responses={403: {"description": "The four-eyes rule"}})
    def approve_model(ref: str, body: Approve, request: Request) -> dict[str, Any]:
        """Approve a version for production; who registered it may not (four-eyes), the reason is recorded."""
        card = registry.approve(ref, reason=body.reason, actor=actor_of(request)).to_dict()
        card.pop("reference_profile", None)
        return card

    @router.get("/audit")
    def list_audit(
        target: str | None = Query(None, max_length=256, description="fraud, model:fraud:3, endpoint:fraud, key:ci"),
        since: str | None = Query(None, max_length=32, description="how far back: 30m, 12h, 7d"),
        limit: int = Query(100, ge=1, le=MAX_LIST, description="the newest this many"),
    ) -> list[dict[str, Any]]:
        """The audit trail, oldest first: who changed what, from where, in which request."""
        events = workspace.audit.list(target=target, since=since_cutoff(since), limit=limit)
        return [e.to_dict() for e in events]

    @router.get("/audit/verify")
    def verify_audit() -> dict[str, Any]:
        """Walk the hash chain: intact, or the first event that was edited, deleted or reordered."""
        check = workspace.audit.verify()
        return {"intact": check.intact, "checked": check.checked, "broken_at": check.broken_at, "reason": check.reason}

    return router
