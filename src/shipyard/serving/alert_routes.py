"""Alert rules over HTTP: declare, list, show, history, silence, acknowledge, test, delete.

Thin translators over ``AlertService`` (which audits); evaluation is not here, the controller lease holder
runs it. Sync handlers: FastAPI runs them in its thread pool, so the store's round-trips never block the loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.alerts.evaluator import SeriesState
from shipyard.serving.auth import actor_of
from shipyard.workspace import Workspace


class SilenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration: str | float = Field(..., alias="for", examples=["2h", "30m"])
    reason: str = Field(..., min_length=1, max_length=1000)


class ApplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alerts: list[dict[str, Any]] = Field(..., description="the rules, as in an alerts YAML file")


def _rule_row(stored: Any, states: list[SeriesState]) -> dict[str, Any]:
    worst = next((s for s in states if s.state == "firing"), next(iter(states), None))
    return {
        **stored.rule.to_dict(),
        "enabled": stored.enabled,
        "state": worst.state if worst is not None else "inactive",
        "value": worst.value if worst is not None else None,
    }


def alerts_router(workspace: Workspace) -> APIRouter:
    router = APIRouter(tags=["alerts"])
    alerts = workspace.alerts

    @router.get("/v1/alerts")
    def list_rules(endpoint: str | None = Query(None, max_length=128)) -> dict[str, Any]:
        return {"rules": [_rule_row(r, s) for r, s in alerts.rules(endpoint=endpoint)]}

    @router.post("/v1/alerts", status_code=201, responses={400: {"description": "An invalid rule"}})
    def create(body: dict[str, Any], request: Request) -> dict[str, Any]:
        """Declare or replace a rule: name, endpoint, metric, op, threshold, for, severity, labels, action."""
        return alerts.create({**body, "source": "cli"}, actor=actor_of(request)).to_dict()

    @router.post("/v1/alerts/apply")
    def apply(body: ApplyBody, request: Request) -> dict[str, Any]:
        """Make these the file-declared rules: others declared from a file before are deleted."""
        applied, deleted = alerts.apply({"alerts": body.alerts}, actor=actor_of(request))
        return {"applied": applied, "deleted": deleted}

    @router.get("/v1/alerts/{name}", responses={404: {"description": "No such rule"}})
    def show(name: str) -> dict[str, Any]:
        return alerts.show(name)

    @router.delete("/v1/alerts/{name}", status_code=204, responses={404: {"description": "No such rule"}})
    def delete(name: str, request: Request) -> None:
        alerts.delete(name, actor=actor_of(request))

    @router.get("/v1/alerts/{name}/history")
    def history(name: str, limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
        return {"history": [h.to_dict() for h in alerts.history(rule=name, limit=limit)]}

    @router.get("/v1/alerts/{name}/test")
    def test(name: str) -> dict[str, Any]:
        """Evaluate the rule on the newest complete window; nothing is stored, notified or done."""
        return alerts.test(name).to_dict()

    @router.post("/v1/alerts/{name}/silence", status_code=201)
    def silence(name: str, body: SilenceBody, request: Request) -> dict[str, Any]:
        return alerts.silence(name, duration=body.duration, reason=body.reason, actor=actor_of(request)).to_dict()

    @router.post("/v1/alerts/{name}/unsilence")
    def unsilence(name: str, request: Request) -> dict[str, Any]:
        return {"ended": alerts.unsilence(name, actor=actor_of(request))}

    @router.post("/v1/alerts/{name}/ack", responses={409: {"description": "No action waits for confirmation"}})
    def ack(name: str, request: Request) -> dict[str, Any]:
        """Confirm the action a firing rule waits on; it runs now, audited with the rule as its cause."""
        results = alerts.ack(name, actor=actor_of(request))
        return {"actions": [{"ok": r.ok, **r.detail} for r in results]}

    return router
