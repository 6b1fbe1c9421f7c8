"""The notification payload of an alert transition: the one contract every channel reads.

The evaluator writes one ``AlertEvent`` per transition to firing or resolved into the webhook outbox
(``event`` is ``alert.firing`` or ``alert.resolved``, ``endpoint`` the rule's endpoint), in the
transaction that stores the new state. Webhook receivers get ``to_dict()`` as the JSON body; Slack, SMTP
and Alertmanager channels render the same dict, so they never see the evaluator's internals.
Grouping: the evaluator emits an ``alert.group`` event per endpoint and evaluation listing the
``to_dict()`` of each rule that changed (``AlertGroup``) — channels that notify per endpoint read it,
channels that notify per alert read the single events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

FIRING = "alert.firing"
RESOLVED = "alert.resolved"
GROUP = "alert.group"
ACTION = "alert.action"

Status = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One rule on one group (endpoint, version, feature) going to firing or resolved."""

    status: Status
    rule: str
    endpoint: str
    metric: str
    value: float | None
    """The metric's value at this evaluation; None when the report could not compute it (resolved)."""
    op: str
    threshold: float
    severity: str
    started_at: datetime
    """When the rule went firing (for a resolved event, when the episode began)."""
    version: str | None = None
    feature: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ended_at: datetime | None = None
    """When it resolved; None while firing."""
    window_end: datetime | None = None
    """The end of the stored window the value was read from."""
    action: str | None = None
    """What the rule does when it fires (rollback, pause, pin_previous, retrain), None when only notifying."""
    summary: str = ""
    """One human line: 'fraud drift.share = 0.42 > 0.3 for 2 windows'."""

    @property
    def event(self) -> str:
        return FIRING if self.status == "firing" else RESOLVED

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the notification (timestamps ISO 8601, UTC)."""
        return {
            "event": self.event,
            "status": self.status,
            "rule": self.rule,
            "endpoint": self.endpoint,
            "version": self.version,
            "feature": self.feature,
            "metric": self.metric,
            "value": self.value,
            "op": self.op,
            "threshold": self.threshold,
            "severity": self.severity,
            "labels": dict(self.labels),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at is not None else None,
            "window_end": self.window_end.isoformat() if self.window_end is not None else None,
            "action": self.action,
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertEvent:
        """Read back a stored payload (the outbox keeps ``to_dict()``)."""
        ended = data.get("ended_at")
        window_end = data.get("window_end")
        value = data.get("value")
        return cls(
            status="firing" if data["status"] == "firing" else "resolved",
            rule=str(data["rule"]),
            endpoint=str(data["endpoint"]),
            metric=str(data["metric"]),
            value=float(value) if value is not None else None,
            op=str(data["op"]),
            threshold=float(data["threshold"]),
            severity=str(data["severity"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            version=data.get("version"),
            feature=data.get("feature"),
            labels={str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
            ended_at=datetime.fromisoformat(ended) if ended else None,
            window_end=datetime.fromisoformat(window_end) if window_end else None,
            action=data.get("action"),
            summary=str(data.get("summary", "")),
        )


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """Every transition of one endpoint in one evaluation: one notification per endpoint and tick."""

    endpoint: str
    evaluated_at: datetime
    alerts: Sequence[AlertEvent]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": GROUP,
            "endpoint": self.endpoint,
            "evaluated_at": self.evaluated_at.isoformat(),
            "firing": [a.rule for a in self.alerts if a.status == "firing"],
            "resolved": [a.rule for a in self.alerts if a.status == "resolved"],
            "alerts": [a.to_dict() for a in self.alerts],
        }
