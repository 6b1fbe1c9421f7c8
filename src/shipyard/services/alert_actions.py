"""What a firing alert rule does to its endpoint: roll back or pause the rollout, pin the previous version,
or open a retraining job. Each runs through the service that owns it (so it is audited there too) and is
recorded again as ``alert.action`` with the rule as its cause, whoever ran it (the controller, or the
operator whose ``shipyard alerts ack`` confirmed it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shipyard.alerts.rules import AlertRule
from shipyard.core.identity import Actor
from shipyard.errors import ShipyardError
from shipyard.services.audit import record
from shipyard.services.endpoints import EndpointService, endpoint_target
from shipyard.services.jobs import JobService
from shipyard.services.rollouts import RolloutService
from shipyard.store.tables import audit_events


def alert_target(rule: str) -> str:
    return f"alert:{rule}"


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    detail: dict[str, Any]


class AlertActions:
    """Runs a rule's action; a failure (no active rollout, no trainer) is a result with its reason, not a raise."""

    def __init__(self, endpoints: EndpointService, rollouts: RolloutService, jobs: JobService) -> None:
        self.endpoints = endpoints
        self.rollouts = rollouts
        self.jobs = jobs

    def run(self, rule: AlertRule, cause: dict[str, Any], *, actor: Actor) -> ActionResult:
        action = rule.action or ""
        try:
            detail = self._do(action, rule, cause, actor)
            result = ActionResult(True, {"action": action, **detail})
        except ShipyardError as exc:
            result = ActionResult(False, {"action": action, "error": str(exc)})
        with self.endpoints.db.write() as conn:
            record(
                conn,
                actor,
                "alert.action",
                alert_target(rule.name),
                after={"endpoint": rule.endpoint, "ok": result.ok, **result.detail, "cause": cause},
            )
        return result

    def _do(self, action: str, rule: AlertRule, cause: dict[str, Any], actor: Actor) -> dict[str, Any]:
        reason = f"alert {rule.name}: {rule.describe()}"
        if action == "rollback":
            state = self.rollouts.abort(rule.endpoint, reason=reason, actor=actor)
            return {"rollout": state.id, "status": state.status.value}
        if action == "pause":
            state = self.rollouts.pause(rule.endpoint, actor=actor)
            return {"rollout": state.id, "status": state.status.value}
        if action == "pin_previous":
            current = self.endpoints.registry.get(self.endpoints.get(rule.endpoint).model).ref
            previous = self.previous_version(rule.endpoint, current)
            self.endpoints.set_model(rule.endpoint, model=previous, actor=actor)
            return {"from": current, "to": previous}
        job = self.jobs.retrain(rule.endpoint, cause={"kind": "alert", "alert": rule.name, **cause}, actor=actor)
        return {"job": job.id}

    def previous_version(self, endpoint: str, current: str) -> str:
        """The version the endpoint served before ``current``, from the audit trail of its changes."""
        with self.endpoints.db.read() as conn:
            rows = conn.execute(
                sa.select(audit_events.c.before, audit_events.c.after)
                .where(audit_events.c.target == endpoint_target(endpoint))
                .order_by(audit_events.c.id.desc())
                .limit(500)
            ).all()
        for before, after in rows:
            was, now = _change(before, after)
            if was and was != current and now == current:
                return was
        raise ShipyardError(f"no version served {endpoint!r} before {current}: nothing to pin it back to")


def _change(before: Any, after: Any) -> tuple[str | None, str | None]:
    """(served before, served after) of one audit event on the endpoint: a set, or a rollout completing."""
    if not isinstance(after, dict):
        return None, None
    if "rollout_id" in after:
        if after.get("status") != "completed":
            return None, None
        return after.get("stable"), after.get("candidate")
    was = before.get("version") or before.get("model") if isinstance(before, dict) else None
    return was, after.get("version") or after.get("model")
