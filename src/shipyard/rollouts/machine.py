"""The rollout state machine: (state, analysis, now) -> next state plus the events that explain it.

Pure: no clock, no store, no statistics. The controller reads the clock, asks the stats module for an
``Analysis`` over the window ``analysis_since(state)`` names, calls ``tick`` and persists the result; an
empty ``Transition.events`` means nothing changed. ``policy_for`` says what the data plane should route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shipyard.core.endpoints import Arm, TrafficPolicy
from shipyard.errors import ConflictError, InvalidArgumentError
from shipyard.rollouts.spec import Analysis, Outcome, RolloutSpec, Strategy, format_duration, percent


class RolloutStatus(StrEnum):
    """Where a rollout is; ``completed`` means the candidate is the new stable, ``rolled_back`` the old one is."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"

    @property
    def active(self) -> bool:
        """An active rollout blocks a second one on the same endpoint."""
        return self in (RolloutStatus.RUNNING, RolloutStatus.PAUSED)


class EventKind(StrEnum):
    """What happened; each kind is also the webhook event name."""

    STARTED = "started"
    STEP_PASSED = "step_passed"
    HELD = "held"
    WINNER = "winner"
    PROMOTED = "promoted"
    PAUSED = "paused"
    RESUMED = "resumed"
    ABORTED = "aborted"
    ROLLED_BACK = "rolled_back"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class RolloutEvent:
    """One entry of a rollout's history; ``weight`` is the candidate's share right after it."""

    at: datetime
    kind: EventKind
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind.value,
            "message": self.message,
            "evidence": dict(self.evidence),
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutEvent:
        return cls(
            datetime.fromisoformat(data["at"]),
            EventKind(data["kind"]),
            data["message"],
            dict(data.get("evidence") or {}),
            float(data.get("weight", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class RolloutState:
    """A rollout as persisted: its spec, where it is, and every event so far (oldest first).

    The step clock is ``step_started_at`` minus paused time (``step_paused_s``, plus the running pause),
    so a pause stops the interval and the bake without moving the start of the step's evidence window.
    """

    id: str
    endpoint: str
    stable: str
    spec: RolloutSpec
    status: RolloutStatus
    step_index: int
    weight: float
    started_at: datetime
    step_started_at: datetime
    updated_at: datetime
    paused_at: datetime | None = None
    step_paused_s: float = 0.0
    held_at: datetime | None = None
    winner: Arm | None = None
    carry: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[RolloutEvent, ...] = ()

    @property
    def candidate(self) -> str:
        return self.spec.candidate

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "stable": self.stable,
            "spec": self.spec.to_dict(),
            "status": self.status.value,
            "step_index": self.step_index,
            "weight": self.weight,
            "started_at": self.started_at.isoformat(),
            "step_started_at": self.step_started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "paused_at": _iso(self.paused_at),
            "step_paused_s": self.step_paused_s,
            "held_at": _iso(self.held_at),
            "winner": self.winner.value if self.winner else None,
            "carry": dict(self.carry),
            "events": [e.to_dict() for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutState:
        return cls(
            id=data["id"],
            endpoint=data["endpoint"],
            stable=data["stable"],
            spec=RolloutSpec.from_dict(data["spec"]),
            status=RolloutStatus(data["status"]),
            step_index=int(data["step_index"]),
            weight=float(data["weight"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            step_started_at=datetime.fromisoformat(data["step_started_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            paused_at=_from_iso(data.get("paused_at")),
            step_paused_s=float(data.get("step_paused_s", 0.0)),
            held_at=_from_iso(data.get("held_at")),
            winner=Arm(data["winner"]) if data.get("winner") else None,
            carry=dict(data.get("carry") or {}),
            events=tuple(RolloutEvent.from_dict(e) for e in data.get("events", ())),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """The next state and the new events (what webhooks send); persist the state only when ``changed``."""

    state: RolloutState
    events: tuple[RolloutEvent, ...] = ()
    carried: bool = False
    """True when only ``state.carry`` moved: worth saving, but nothing to announce."""

    @property
    def changed(self) -> bool:
        return bool(self.events) or self.carried


_GATED = (Strategy.CANARY, Strategy.BLUE_GREEN)
_MANUAL: Mapping[str, Any] = {"manual": True}
_Note = tuple[EventKind, str, Mapping[str, Any]]


def start(spec: RolloutSpec, *, rollout_id: str, endpoint: str, stable: str, now: datetime) -> Transition:
    """Begin a rollout whose candidate is already loaded and warmed; replace completes here."""
    if spec.candidate == stable:
        raise InvalidArgumentError(f"{stable} already serves endpoint {endpoint!r}; roll out a different version")
    weight = {Strategy.CANARY: spec.steps[0], Strategy.AB: spec.split, Strategy.SHADOW: 0.0}.get(spec.strategy, 1.0)
    state = RolloutState(rollout_id, endpoint, stable, spec, RolloutStatus.RUNNING, 0, weight, now, now, now)
    message = {
        Strategy.REPLACE: f"replacing {stable} with {spec.candidate}: all traffic moves at once",
        Strategy.BLUE_GREEN: f"all traffic switched to {spec.candidate}; {stable} stays loaded for a "
        f"{format_duration(spec.bake_s)} bake",
        Strategy.CANARY: f"canary of {spec.candidate} started at {percent(weight)} "
        f"(steps {', '.join(percent(s) for s in spec.steps)}, {format_duration(spec.interval_s)} each)",
        Strategy.AB: f"A/B test started: {percent(weight)} of routing keys to {spec.candidate}, the rest to {stable}",
        Strategy.SHADOW: f"shadowing {percent(spec.sample)} of requests to {spec.candidate}, off the response path",
    }[spec.strategy]
    notes: list[_Note] = [(EventKind.STARTED, message, {"spec": spec.to_dict(), "stable": stable})]
    if spec.strategy is Strategy.REPLACE or (spec.strategy is Strategy.BLUE_GREEN and spec.bake_s == 0):
        state = _completed(state)
        notes.append((EventKind.COMPLETED, _now_stable(state), {}))
    return _apply(state, now, notes)


def tick(state: RolloutState, analysis: Analysis | None, now: datetime) -> Transition:
    """Advance on the clock and the latest analysis; safe to call as often as the controller likes."""
    if not state.status.active:
        return Transition(state)
    if analysis is None or analysis.carry is None or analysis.carry == state.carry:
        return _tick(state, analysis, now)
    carried = replace(state, carry=dict(analysis.carry), updated_at=now)
    moved = _tick(carried, analysis, now)
    return moved if moved.events else Transition(carried, carried=True)


def _tick(state: RolloutState, analysis: Analysis | None, now: datetime) -> Transition:
    strategy = state.spec.strategy
    # Gates guard users at every tick, paused or mid-step included: a failing candidate is pulled at once.
    if strategy in _GATED and analysis is not None and analysis.outcome is Outcome.FAIL:
        where = _step_label(state) if strategy is Strategy.CANARY else "during the bake"
        message = f"a gate failed {where}{_because(analysis.reason)}; all traffic back on {state.stable}"
        return _apply(_rolled_back(state), now, [(EventKind.ROLLED_BACK, message, analysis.evidence)])
    if state.status is RolloutStatus.PAUSED or analysis is None:
        return Transition(state)
    if strategy is Strategy.AB:
        return _tick_ab(state, analysis, now)
    if strategy not in _GATED or step_remaining_s(state, now) > 0:
        return Transition(state)
    if analysis.outcome is Outcome.HOLD:
        if state.held_at is not None:  # recorded once per step end, not on every tick
            return Transition(state)
        what = _step_label(state) if strategy is Strategy.CANARY else "end of bake"
        message = f"{what} held{_because(analysis.reason or 'not enough evidence for a verdict')}; analysis repeats"
        return _apply(replace(state, held_at=now), now, [(EventKind.HELD, message, analysis.evidence)])
    if strategy is Strategy.BLUE_GREEN:
        notes: list[_Note] = [(EventKind.COMPLETED, f"bake passed; {_now_stable(state)}", analysis.evidence)]
        return _apply(_completed(state), now, notes)
    return _apply(*_next_step(state, now, EventKind.STEP_PASSED, f"{_step_label(state)} passed", analysis.evidence))


def promote(state: RolloutState, now: datetime, *, full: bool = False) -> Transition:
    """Move forward by hand (resuming if paused): a canary one step, or all the way with ``full``; others complete."""
    _require_active(state, "promote")
    resumed = _unpause(state, now)
    if state.spec.strategy is Strategy.CANARY and not full:
        return _apply(*_next_step(resumed, now, EventKind.PROMOTED, f"{_step_label(state)} promoted by hand", _MANUAL))
    notes: list[_Note] = [
        (EventKind.PROMOTED, f"{state.candidate} promoted by hand at {percent(state.weight)}", _MANUAL),
        (EventKind.COMPLETED, _now_stable(state), {}),
    ]
    return _apply(_completed(resumed), now, notes)


def pause(state: RolloutState, now: datetime) -> Transition:
    """Freeze the rollout at its current weight; the step clock stops, failing gates still roll back."""
    _require_active(state, "pause")
    if state.status is RolloutStatus.PAUSED:
        raise ConflictError(
            f"rollout {state.id} on {state.endpoint!r} is already paused since {_show(state.paused_at)}"
        )
    paused = replace(state, status=RolloutStatus.PAUSED, paused_at=now)
    return _apply(paused, now, [(EventKind.PAUSED, f"paused at {percent(state.weight)}", _MANUAL)])


def resume(state: RolloutState, now: datetime) -> Transition:
    """Continue a paused rollout; the paused time does not count toward the step's interval or the bake."""
    _require_active(state, "resume")
    if state.paused_at is None:
        raise ConflictError(f"rollout {state.id} on {state.endpoint!r} is not paused (it is {state.status.value})")
    message = f"resumed after {format_duration(_seconds(now, state.paused_at))} paused"
    return _apply(_unpause(state, now), now, [(EventKind.RESUMED, message, _MANUAL)])


def abort(state: RolloutState, now: datetime, *, reason: str = "") -> Transition:
    """Send all traffic back to stable at once, whatever step the rollout is at."""
    _require_active(state, "abort")
    evidence = {"manual": True, "reason": reason} if reason else _MANUAL
    notes: list[_Note] = [
        (EventKind.ABORTED, f"aborted by hand at {percent(state.weight)}{_because(reason)}", evidence),
        (EventKind.ROLLED_BACK, f"all traffic back on {state.stable}", evidence),
    ]
    return _apply(_rolled_back(state), now, notes)


def policy_for(state: RolloutState) -> TrafficPolicy:
    """The traffic policy the data plane applies for this state; a pause keeps the current weight."""
    if state.status is RolloutStatus.COMPLETED:
        return TrafficPolicy(state.candidate)
    if state.status is RolloutStatus.ROLLED_BACK:
        return TrafficPolicy(state.stable)
    if state.spec.strategy is Strategy.SHADOW:
        return TrafficPolicy(state.stable, shadow=state.candidate, shadow_sample=state.spec.sample)
    return TrafficPolicy(state.stable, candidate=state.candidate, weight=state.weight)


def analysis_since(state: RolloutState) -> datetime:
    """Start of the traffic the next analysis should cover: the current step (or bake), else the whole rollout."""
    return state.step_started_at if state.spec.strategy in _GATED else state.started_at


def step_remaining_s(state: RolloutState, now: datetime) -> float:
    """Seconds left in the current canary step or blue-green bake, paused time not counted; 0 when over."""
    length = {Strategy.CANARY: state.spec.interval_s, Strategy.BLUE_GREEN: state.spec.bake_s}.get(state.spec.strategy)
    if length is None:
        return 0.0
    paused_s = state.step_paused_s + (_seconds(now, state.paused_at) if state.paused_at else 0.0)
    return max(0.0, length - (_seconds(now, state.step_started_at) - paused_s))


def next_action(state: RolloutState, now: datetime) -> str:
    """One sentence for ``rollout status``: what the rollout waits for and what happens next."""
    spec, left = state.spec, step_remaining_s(state, now)
    if state.status is RolloutStatus.COMPLETED:
        return f"nothing: completed at {_show(state.updated_at)}; {state.candidate} is stable"
    if state.status is RolloutStatus.ROLLED_BACK:
        return f"nothing: rolled back at {_show(state.updated_at)}; {state.stable} serves all traffic"
    if state.status is RolloutStatus.PAUSED:
        where = {
            Strategy.CANARY: f"at {_step_label(state)} with {format_duration(left)} left in the step",
            Strategy.BLUE_GREEN: f"during the bake with {format_duration(left)} left",
        }.get(spec.strategy, f"at {percent(state.weight)}")
        return f"paused {where}; traffic stays as it is until resume or promote (a failing gate still rolls back)"
    if spec.strategy is Strategy.CANARY:
        following = spec.steps[state.step_index + 1]
        then = f"pass moves to {percent(following)}{' (completed)' if following == 1.0 else ''}, fail rolls back to 0%"
        if left > 0:
            return f"{_step_label(state)} ends in {format_duration(left)}; then analysis: {then}"
        if state.held_at is not None:
            return f"{_step_label(state)} is held for more evidence; analysis repeats: {then} (or promote by hand)"
        return f"{_step_label(state)} ended; waiting for its analysis: {then}"
    if spec.strategy is Strategy.BLUE_GREEN:
        if left > 0:
            until = _show(now + timedelta(seconds=left))
            back = f"a failed gate or abort switches back to {state.stable}"
            return f"baking until {until} ({format_duration(left)} left); {back}"
        if state.held_at is not None:
            return "bake ended but held for more evidence; analysis repeats (or promote by hand)"
        return "bake ended; waiting for the final analysis"
    if spec.strategy is Strategy.AB:
        if state.winner is not None:
            ref = state.candidate if state.winner is Arm.CANDIDATE else state.stable
            return f"{ref} won the A/B test; promote to make {state.candidate} stable, or abort to keep {state.stable}"
        then = "a winner is promoted automatically" if spec.auto_promote else "then promote or abort by hand"
        return f"waiting for a significant A/B result ({percent(state.weight)} to {state.candidate}); {then}"
    return f"shadowing {percent(spec.sample)} of requests to {state.candidate}; promote to make it stable, or abort"


def _tick_ab(state: RolloutState, analysis: Analysis, now: datetime) -> Transition:
    if analysis.outcome is Outcome.HOLD:
        return Transition(state)
    won = Arm.CANDIDATE if analysis.outcome is Outcome.PASS else Arm.STABLE
    reason = f"{state.candidate if won is Arm.CANDIDATE else state.stable} won the A/B test{_because(analysis.reason)}"
    if state.spec.auto_promote and won is Arm.CANDIDATE:
        notes: list[_Note] = [
            (EventKind.PROMOTED, reason, analysis.evidence),
            (EventKind.COMPLETED, _now_stable(state), {}),
        ]
        return _apply(_completed(state), now, notes)
    if state.spec.auto_promote:
        message = f"{reason}; all traffic back on {state.stable}"
        return _apply(_rolled_back(state), now, [(EventKind.ROLLED_BACK, message, analysis.evidence)])
    if state.winner is won:
        return Transition(state)
    return _apply(
        replace(state, winner=won), now, [(EventKind.WINNER, f"{reason}; promote or abort", analysis.evidence)]
    )


def _next_step(
    state: RolloutState, now: datetime, kind: EventKind, message: str, evidence: Mapping[str, Any]
) -> tuple[RolloutState, datetime, list[_Note]]:
    """A canary's next weight; reaching 100% completes it, since the candidate then is the stable version."""
    following = state.spec.steps[state.step_index + 1]
    if following == 1.0:
        done = _completed(state)
        return done, now, [(kind, f"{message}; moving to 100%", evidence), (EventKind.COMPLETED, _now_stable(done), {})]
    moved = replace(
        state, step_index=state.step_index + 1, weight=following, step_started_at=now, step_paused_s=0.0, held_at=None
    )
    return moved, now, [(kind, f"{message}; now {percent(following)}", evidence)]


def _completed(state: RolloutState) -> RolloutState:
    return replace(state, status=RolloutStatus.COMPLETED, weight=1.0, paused_at=None, held_at=None)


def _rolled_back(state: RolloutState) -> RolloutState:
    return replace(state, status=RolloutStatus.ROLLED_BACK, weight=0.0, paused_at=None, held_at=None)


def _unpause(state: RolloutState, now: datetime) -> RolloutState:
    if state.paused_at is None:
        return state
    paused_s = state.step_paused_s + _seconds(now, state.paused_at)
    return replace(state, status=RolloutStatus.RUNNING, paused_at=None, step_paused_s=paused_s)


def _apply(state: RolloutState, now: datetime, notes: list[_Note]) -> Transition:
    """Stamp the new events with the time and resulting weight, and append them to the history."""
    new = tuple(RolloutEvent(now, kind, message, dict(evidence), state.weight) for kind, message, evidence in notes)
    return Transition(replace(state, updated_at=now, events=(*state.events, *new)), new)


def _require_active(state: RolloutState, action: str) -> None:
    if not state.status.active:
        ended = "completed" if state.status is RolloutStatus.COMPLETED else "was rolled back"
        raise ConflictError(
            f"cannot {action} rollout {state.id} on {state.endpoint!r}: it {ended} at {_show(state.updated_at)}; "
            "start a new rollout instead"
        )


def _now_stable(state: RolloutState) -> str:
    return f"{state.candidate} is now stable on {state.endpoint!r}"


def _step_label(state: RolloutState) -> str:
    return f"step {state.step_index + 1} of {len(state.spec.steps)} ({percent(state.weight)})"


def _because(reason: str) -> str:
    return f": {reason}" if reason else ""


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def _show(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _from_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
