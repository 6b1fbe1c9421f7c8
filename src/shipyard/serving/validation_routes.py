"""``GET /v1/models/{name}/versions/{version}/validations``: a version's validation runs, the evidence approvals
and rollouts can require.

Read-only on purpose: a run scores a holdout file, and a server reading paths its callers name is a hole, so
runs happen where the data is (``shipyard validate`` in CI) and the server only shows what they stored.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from shipyard.workspace import Workspace


def validation_router(workspace: Workspace) -> APIRouter:
    """Sync handlers: FastAPI runs them in its thread pool, so the store read never blocks the event loop."""
    router = APIRouter(prefix="/v1/models", tags=["validation"])

    @router.get("/{name}/versions/{version}/validations", responses={404: {"description": "Unknown model or version"}})
    def list_validations(
        name: str, version: int, limit: int = Query(20, ge=1, le=100, description="the newest runs, at most")
    ) -> dict[str, Any]:
        """The version's validation runs, newest first: figures, gates and verdict of each."""
        runs = workspace.validation.list(f"{name}:{version}", limit=limit)
        return {"model": name, "version": version, "validations": [r.to_dict() for r in runs]}

    return router
