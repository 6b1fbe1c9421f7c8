"""Feedback in, monitoring out: the two HTTP routes over the monitoring services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from shipyard.errors import MalformedRequestError
from shipyard.serving.auth import actor_of
from shipyard.serving.recorder import Recorder
from shipyard.serving.rest import read_body
from shipyard.workspace import Workspace

FEEDBACK_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "examples": {
                    "label": {"value": {"request_id": "3f2c9a", "label": 1}},
                    "reward": {"value": {"request_id": "3f2c9a", "reward": 1}},
                    "batch": {
                        "value": {
                            "items": [
                                {"request_id": "3f2c9a", "row": 0, "label": 1},
                                {"request_id": "3f2c9a", "row": 1, "label": 0, "timestamp": "2026-11-21T10:00:00Z"},
                            ]
                        }
                    },
                    "correction": {"value": {"request_id": "3f2c9a", "label": 0, "correction": True}},
                },
            }
        },
    },
    "responses": {
        "200": {"description": "Stored durably: every item, or none (the same value again changes nothing)"},
        "400": {"description": "Body is not JSON"},
        "404": {"description": "Unknown endpoint"},
        "409": {
            "description": 'A stored label or reward would change: send the item with "correction": true, '
            "or PUT; nothing in the body was stored"
        },
        "422": {"description": "An item is malformed, or its label has the wrong type for the model"},
    },
}


def monitoring_router(workspace: Workspace, recorder: Recorder | None, *, max_bytes: int) -> APIRouter:
    router = APIRouter(prefix="/v1/endpoints/{endpoint}", tags=["monitoring"])

    async def record(endpoint: str, request: Request, *, correction: bool) -> Response:
        body = await read_body(request, max_bytes)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedRequestError(f"feedback body is not valid JSON: {exc}") from None
        served_by = _served_by(recorder) if recorder is not None else None
        actor = actor_of(request)
        result = await anyio.to_thread.run_sync(
            lambda: workspace.feedback.record(endpoint, data, served_by=served_by, correction=correction, actor=actor)
        )
        return Response(orjson.dumps(result), media_type="application/json")

    @router.post("/feedback", openapi_extra=FEEDBACK_OPENAPI, response_class=Response)
    async def post_feedback(endpoint: str, request: Request) -> Response:
        """Answered only after the feedback is committed to the control-plane store."""
        return await record(endpoint, request, correction=False)

    @router.put("/feedback", openapi_extra=FEEDBACK_OPENAPI, response_class=Response)
    async def correct_feedback(endpoint: str, request: Request) -> Response:
        """The same body as POST, every item a correction: stored values are replaced, the old ones kept."""
        return await record(endpoint, request, correction=True)

    @router.get("/monitoring", responses={404: {"description": "Unknown endpoint"}})
    def get_monitoring(
        endpoint: str,
        window: str = Query("1h", description="how far back: 30m, 1h, 7d, or 'all'"),
        version: str | None = Query(None, description="only this version, e.g. fraud:3"),
    ) -> dict[str, Any]:
        """Drift, data quality, performance and operational figures, merged over the window."""
        if recorder is not None:
            recorder.sync()  # this worker's latest traffic first; other workers' arrives within their flush interval
        return workspace.monitoring.report(endpoint, window=window, version=version).to_dict()

    return router


def _served_by(recorder: Recorder) -> Callable[[str], tuple[str, str] | None]:
    """The recorder's lookup for one feedback body: feedback sent right after its prediction finds the request
    still waiting in the recorder's buffer, so the first miss drains the buffer once and looks again."""
    drained = False

    def lookup(request_id: str) -> tuple[str, str] | None:
        nonlocal drained
        found = recorder.served_by(request_id)
        if found is None and not drained:
            drained = True
            recorder.drain()
            found = recorder.served_by(request_id)
        return found

    return lookup
