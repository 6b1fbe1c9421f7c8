"""The alert state machine: one rule's series stepped over one stored window, as a pure function.

States: ``inactive`` → ``pending`` (the condition holds, fewer than ``for`` consecutive windows) →
``firing`` → ``resolved`` (the condition stopped holding). Windows are evaluated once each, in order, so
``held`` counts consecutive windows whatever the tick rate; a gap (windows nobody evaluated) starts the
count again. A value the report could not compute changes nothing: no data is not evidence of health.
A firing series notifies once (``notified``); a silence withholds the notification, not the state, and a
series still firing when its silence ends notifies then. The caller stores the result and sends events.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shipyard.alerts.metrics import Resolved
from shipyard.alerts.rules import AlertRule

INACTIVE = "inactive"
PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class SeriesState:
    """What is stored per rule and group between evaluations (one row of ``alert_states``)."""

    rule: str
    group_key: str
    state: str = INACTIVE
    value: float | None = None
    held: int = 0
    since: datetime | None = None
    """When the current state began (the end of the window that moved it)."""
    window_start: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    notified: bool = False
    action_state: str | None = None
    action_detail: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    """The new state, the transition made (None when the state stayed), and what the caller must send."""

    state: SeriesState
    transition: str | None = None
    notify: str | None = None
    """``firing`` or ``resolved`` when a notification goes out for this step (never while silenced)."""
    act: bool = False
    """The rule's action runs now (it just fired and needs no confirmation)."""
    reason: str | None = None
    """Why the value was not computed, when it was not."""


def initial(rule: AlertRule) -> SeriesState:
    return SeriesState(rule.name, rule.group_key, labels=dict(rule.labels))


def step(
    rule: AlertRule,
    previous: SeriesState,
    resolved: Resolved,
    *,
    window_start: datetime,
    window_s: int,
    silenced: bool = False,
) -> Step:
    """Step one series over the window starting at ``window_start`` (evaluate each window once, in order)."""
    window_end = window_start + timedelta(seconds=window_s)
    if previous.window_start is not None and window_start <= previous.window_start:
        return Step(previous)  # already evaluated: a second tick in the same window changes nothing
    consecutive = previous.window_start is not None and window_start - previous.window_start == timedelta(
        seconds=window_s
    )
    if resolved.value is None:
        kept = replace(previous, value=None, window_start=window_start)
        return _still(kept, silenced, reason=resolved.reason)
    value = resolved.value
    held = (previous.held if consecutive else 0) + 1 if rule.breached(value) else 0
    current = replace(previous, value=value, window_start=window_start, held=held)
    if held == 0:
        if previous.state == FIRING:
            done = replace(current, state=RESOLVED, since=window_end, resolved_at=window_end, notified=False)
            return Step(done, RESOLVED, notify=RESOLVED if previous.notified else None)
        if previous.state == PENDING:
            return Step(replace(current, state=INACTIVE, since=window_end), INACTIVE)
        return Step(current)
    if previous.state == FIRING:
        return _still(current, silenced)
    if held < rule.for_windows:
        if previous.state == PENDING:
            return Step(current)
        return Step(replace(current, state=PENDING, since=window_end), PENDING)
    fired = replace(
        current,
        state=FIRING,
        since=window_end,
        fired_at=window_end,
        resolved_at=None,
        notified=not silenced,
        action_state=("waiting" if rule.confirm else None) if rule.action else None,
        action_detail=None,
    )
    return Step(fired, FIRING, notify=None if silenced else FIRING, act=rule.action is not None and not rule.confirm)


def _still(state: SeriesState, silenced: bool, *, reason: str | None = None) -> Step:
    """No transition; but a firing series a silence kept quiet notifies once the silence is over."""
    if state.state == FIRING and not state.notified and not silenced:
        return Step(replace(state, notified=True), notify=FIRING, reason=reason)
    return Step(state, reason=reason)
