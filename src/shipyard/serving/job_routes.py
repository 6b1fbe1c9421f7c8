"""Retraining over HTTP: open a job for an endpoint, read jobs and their logs, cancel one.

Declaring a trainer is not here: a trainer is code the server runs, so it is declared on a machine that holds
the store (``shipyard models set-trainer``), not by any caller with a key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.rollouts.spec import parse_duration
from shipyard.serving.auth import actor_of
from shipyard.workspace import Workspace


class RetrainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: str | None = Field("30d", examples=["30d", "12h", "all"], description="how far back feedback is read")
    include_training_data: bool = Field(False, description="add the parent's kept training set, when it has one")
    timeout: str | float = Field("1h", examples=["1h", 600], description="the trainer is stopped after this")
    engine: str = Field("local", examples=["local"])


def jobs_router(workspace: Workspace) -> APIRouter:
    """Sync handlers: FastAPI runs them in its thread pool, so the store's round-trips never block the loop."""
    router = APIRouter(tags=["jobs"])
    jobs = workspace.jobs

    @router.post("/v1/endpoints/{endpoint}/retrain", status_code=202)
    def retrain(endpoint: str, request: Request, body: RetrainBody | None = None) -> dict[str, Any]:
        """Queue a retraining job; the server holding the controller lease runs it. Poll ``/v1/jobs/{id}``."""
        body = body or RetrainBody.model_validate({})
        timeout_s = parse_duration(body.timeout, option="timeout")
        job = jobs.retrain(
            endpoint,
            since=body.since,
            include_training_data=body.include_training_data,
            timeout_s=timeout_s,
            engine=body.engine,
            actor=actor_of(request),
        )
        return job.to_dict()

    @router.get("/v1/jobs")
    def list_jobs(
        model: str | None = Query(None, max_length=128),
        state: str | None = Query(None, max_length=16),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        return {"jobs": [job.to_dict() for job in jobs.list_jobs(model=model, state=state, limit=limit)]}

    @router.get("/v1/jobs/{job_id}", responses={404: {"description": "No such job"}})
    def show_job(job_id: str, log: bool = Query(False, description="include the job's log")) -> dict[str, Any]:
        return jobs.get(job_id).to_dict(with_log=log)

    @router.post("/v1/jobs/{job_id}/cancel", responses={409: {"description": "The job already finished"}})
    def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
        return jobs.cancel(job_id, actor=actor_of(request)).to_dict()

    return router
