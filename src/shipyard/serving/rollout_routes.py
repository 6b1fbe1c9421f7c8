"""Rollout routes over the same service the CLI uses: start, status, and the manual moves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.serving.auth import actor_of
from shipyard.workspace import Workspace


class GatesBody(BaseModel):
    """Gate thresholds; a gate left out keeps its default, one set to null is turned off."""

    model_config = ConfigDict(extra="forbid")

    max_error_rate: float | None = Field(None, examples=[0.05])
    max_error_rate_ratio: float | None = Field(None, examples=[2.0])
    max_latency_ratio: float | None = Field(None, examples=[1.5])
    max_prediction_shift: float | None = Field(None, examples=[0.2])
    min_requests: int = Field(100, examples=[100])


class RolloutStart(BaseModel):
    """Options the strategy does not use must be left out (or null); they are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=256, examples=["fraud:4"])
    strategy: str = Field(examples=["canary"], description="replace, blue-green, canary, ab or shadow")
    steps: str | list[float] | None = Field(
        None, examples=["5,25,50,100", [0.05, 0.25, 0.5, 1.0]], description="percentages as text, or fractions"
    )
    interval_s: str | float | None = Field(None, examples=["5m", 300], description="canary: each step's length")
    bake_s: str | float | None = Field(None, examples=["10m", 600], description="blue-green: the bake time")
    split: float | None = Field(None, examples=[0.5], description="ab: the candidate's share, a fraction")
    sample: float | None = Field(None, examples=[0.2], description="shadow: share of requests shadowed")
    alpha: float | None = Field(None, examples=[0.05], description="ab: significance level")
    auto_promote: bool | None = Field(None, description="ab: promote a significant winner automatically")
    gates: GatesBody | None = None


class RolloutAbort(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000, examples=["complaints from support"])


def rollout_router(workspace: Workspace) -> APIRouter:
    """Sync handlers: FastAPI runs them in its thread pool, so loading a candidate never blocks the event loop."""
    router = APIRouter(prefix="/v1/endpoints/{endpoint}/rollouts", tags=["rollouts"])
    rollouts = workspace.rollouts

    @router.post("", status_code=201, responses={409: {"description": "A rollout is already in progress"}})
    def start_rollout(endpoint: str, body: RolloutStart, request: Request) -> dict[str, Any]:
        options = body.model_dump(exclude={"to", "strategy", "gates"}, exclude_none=True)
        if body.gates is not None:
            # Only the gates the caller named: an explicit null turns a gate off, a missing one keeps its default.
            options["gates"] = body.gates.model_dump(exclude_unset=True)
        if isinstance(options.get("steps"), list):
            options["steps"] = tuple(options["steps"])
        return rollouts.start(
            endpoint, to=body.to, strategy=body.strategy, actor=actor_of(request), **options
        ).to_dict()

    @router.get("/current", responses={404: {"description": "The endpoint has no rollout"}})
    def rollout_status(endpoint: str) -> dict[str, Any]:
        return rollouts.status(endpoint).to_dict()

    @router.post("/current/promote")
    def promote_rollout(endpoint: str, request: Request) -> dict[str, Any]:
        return rollouts.promote(endpoint, actor=actor_of(request)).to_dict()

    @router.post("/current/pause")
    def pause_rollout(endpoint: str, request: Request) -> dict[str, Any]:
        return rollouts.pause(endpoint, actor=actor_of(request)).to_dict()

    @router.post("/current/resume")
    def resume_rollout(endpoint: str, request: Request) -> dict[str, Any]:
        return rollouts.resume(endpoint, actor=actor_of(request)).to_dict()

    @router.post("/current/abort")
    def abort_rollout(endpoint: str, request: Request, body: RolloutAbort | None = None) -> dict[str, Any]:
        return rollouts.abort(endpoint, reason=body.reason if body else "", actor=actor_of(request)).to_dict()

    return router
