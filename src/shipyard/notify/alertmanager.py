"""Prometheus Alertmanager's API v2: ``POST /api/v2/alerts`` with labels, annotations, ``startsAt``, ``endsAt``.

Alertmanager then does what teams already configured it for: grouping, inhibition, silences and routing to
PagerDuty or Opsgenie. An alert is identified by its labels, so the resolve (the same labels, ``endsAt`` now)
ends the alert the firing opened. Prometheus re-sends firing alerts every minute and lets Alertmanager expire
those it stops hearing about; Shipyard sends each transition once, durably, so a firing alert carries an
``endsAt`` of ``hold_s`` ahead instead, and its resolve ends it sooner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shipyard.alerts.events import AlertEvent
from shipyard.notify.base import Outcome, describe, where
from shipyard.notify.webhook import post_json

if TYPE_CHECKING:
    import httpx

_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str:
    """A Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``): other characters become ``_``."""
    name = _LABEL.sub("_", key) or "_"
    return f"_{name}" if name[0].isdigit() else name


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def alertmanager_alert(alert: AlertEvent, *, now: datetime, hold_s: float) -> dict[str, Any]:
    """One entry of the ``POST /api/v2/alerts`` list."""
    labels = {label_name(k): str(v) for k, v in alert.labels.items()}
    labels.update(
        {
            "alertname": alert.rule,
            "severity": alert.severity,
            "metric": alert.metric,
            **where(alert),
            "source": "shipyard",
        }
    )
    annotations = {
        "summary": describe(alert),
        "value": "not computed" if alert.value is None else f"{alert.value:.6g}",
        "threshold": f"{alert.op} {alert.threshold:g}",
    }
    if alert.action:
        annotations["action"] = alert.action
    if alert.status == "resolved":
        ended = alert.ended_at if alert.ended_at is not None and alert.ended_at <= now else now
    else:
        ended = now + timedelta(seconds=hold_s)
    return {"labels": labels, "annotations": annotations, "startsAt": _iso(alert.started_at), "endsAt": _iso(ended)}


class AlertmanagerNotifier:
    def __init__(self, client: httpx.Client, url: str, *, hold_s: float, clock: Callable[[], datetime]) -> None:
        self.client = client
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.hold_s = hold_s
        self.clock = clock

    def send(self, alert: AlertEvent, *, delivery_id: int) -> Outcome:
        body = json.dumps([alertmanager_alert(alert, now=self.clock(), hold_s=self.hold_s)]).encode()
        return post_json(self.client, self.url, body, {"User-Agent": "shipyard-notify"})
