"""``GET /v1/requests/{request_id}``: the trace of one served request, over the tracing service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from shipyard.core.identity import Permission
from shipyard.errors import PermissionDeniedError
from shipyard.services.tracing import TracingService
from shipyard.serving.auth import actor_of
from shipyard.serving.recorder import Recorder
from shipyard.workspace import Workspace


def trace_router(workspace: Workspace, recorder: Recorder | None) -> APIRouter:
    """Sync handler: FastAPI runs it in its thread pool, so reading the log never blocks the event loop."""
    router = APIRouter(prefix="/v1/requests", tags=["tracing"])
    tracing = TracingService(workspace.endpoints, workspace.prediction_log)

    @router.get(
        "/{request_id}",
        responses={
            403: {"description": "The key is limited to other endpoints or models"},
            404: {"description": "Unknown request id, not sampled into the prediction log, or not written yet"},
        },
    )
    def trace_request(
        request_id: str,
        request: Request,
        endpoint: str | None = Query(None, description="the endpoint that served it; without it every one is searched"),
    ) -> dict[str, Any]:
        """Version, arm, artifact sha256, training-data hash, commit, inputs, outputs, feedback, rollout state.

        The middleware checked the read permission; the scope is checked here, because the endpoint is only
        known from the query or from the log: a scoped key searches and sees only its own endpoints and models.
        """
        principal = actor_of(request).principal
        if endpoint is not None and not principal.allows(Permission.READ, endpoint=endpoint):
            raise PermissionDeniedError(f"{principal.label} may not read requests of endpoint {endpoint!r}")
        if recorder is not None:
            recorder.drain()  # this worker's latest requests first; other workers' arrive within their flush interval
        trace = tracing.trace(request_id, endpoint=endpoint, within=principal.endpoints)
        if not principal.allows(Permission.READ, endpoint=trace.endpoint, model=trace.model):
            raise PermissionDeniedError(f"{principal.label} may not read requests served by model {trace.model!r}")
        return trace.to_dict()

    return router
