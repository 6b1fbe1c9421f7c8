"""Admin routes over the same services the CLI uses: endpoints and the registry (read-only here)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from shipyard.core.endpoints import Endpoint
from shipyard.workspace import Workspace


class EndpointCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128, examples=["fraud"])
    model: str = Field(min_length=1, max_length=256, examples=["fraud:3", "fraud@champion"])
    strict: bool = False


class EndpointUpdate(BaseModel):
    model: str = Field(min_length=1, max_length=256, examples=["fraud:4"])
    strict: bool | None = None


def _endpoint(endpoint: Endpoint, version: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": endpoint.name,
        "model": endpoint.model,
        "strict": endpoint.strict,
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
        return [_endpoint(e) for e in endpoints.list()]

    @router.post("/endpoints", status_code=201)
    def create_endpoint(body: EndpointCreate) -> dict[str, Any]:
        resolved = endpoints.create(body.name, model=body.model, strict=body.strict)
        return _endpoint(resolved.endpoint, resolved.version.ref)

    @router.get("/endpoints/{name}")
    def show_endpoint(name: str) -> dict[str, Any]:
        resolved = endpoints.resolve(endpoints.get(name))
        return _endpoint(resolved.endpoint, resolved.version.ref)

    @router.put("/endpoints/{name}")
    def update_endpoint(name: str, body: EndpointUpdate) -> dict[str, Any]:
        resolved = endpoints.set_model(name, model=body.model, strict=body.strict)
        return _endpoint(resolved.endpoint, resolved.version.ref)

    @router.delete("/endpoints/{name}", status_code=204)
    def delete_endpoint(name: str) -> None:
        endpoints.delete(name)

    @router.get("/models")
    def list_models() -> list[dict[str, Any]]:
        return [
            {"name": m.name, "latest_version": m.latest_version, "versions": m.versions, "aliases": dict(m.aliases)}
            for m in registry.list_models()
        ]

    @router.get("/models/{ref}")
    def show_model(ref: str) -> dict[str, Any]:
        card = registry.get(ref).to_dict()
        card.pop("reference_profile", None)
        return card

    return router
