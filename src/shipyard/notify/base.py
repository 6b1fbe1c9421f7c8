"""The seam every channel kind implements, and the words all of them use for an alert.

A notifier makes one try and says how it went; retrying, backoff and cursors are the delivery's business
(``notify.delivery``), so a kind is a few lines of formatting and one network call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from shipyard.alerts.events import AlertEvent

RETRY_STATUSES = frozenset({408, 425, 429})
"""HTTP answers worth another try besides 5xx: the target is overloaded, rate-limiting, or timed out."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One try: ``problem`` None when the target accepted it; else why, and whether another try may help."""

    problem: str | None = None
    retry: bool = False
    answer: str = ""
    """What the target said (``HTTP 200``, ``250 OK``), shown by ``shipyard channels test``."""

    @property
    def ok(self) -> bool:
        return self.problem is None


class Notifier(Protocol):
    """Sends one alert event to one channel; never raises for a target that is down, it says so."""

    def send(self, alert: AlertEvent, *, delivery_id: int) -> Outcome: ...


def title(alert: AlertEvent) -> str:
    """``[FIRING critical] drift-share on fraud``: the line a person sees first."""
    return f"[{alert.status.upper()} {alert.severity}] {alert.rule} on {alert.endpoint}"


def describe(alert: AlertEvent) -> str:
    """The one human line: the evaluator's summary, or the comparison when it gave none."""
    if alert.summary:
        return alert.summary
    value = "not computed" if alert.value is None else f"{alert.value:.6g}"
    return f"{alert.metric} = {value} ({alert.op} {alert.threshold:g})"


def where(alert: AlertEvent) -> Mapping[str, str]:
    """What the alert is about, as labels: endpoint, and version and feature when the rule names them."""
    found = {"endpoint": alert.endpoint}
    if alert.version:
        found["version"] = str(alert.version)
    if alert.feature:
        found["feature"] = str(alert.feature)
    return found


def http_outcome(status: int, text: str) -> Outcome:
    """An HTTP answer as an outcome: 2xx/3xx accepted; 5xx and ``RETRY_STATUSES`` retried; other 4xx given up."""
    if status < 400:
        return Outcome(answer=f"HTTP {status}")
    problem = f"HTTP {status}: {' '.join(text.split())[:200]}" if text.strip() else f"HTTP {status}"
    return Outcome(problem, retry=status >= 500 or status in RETRY_STATUSES, answer=f"HTTP {status}")
