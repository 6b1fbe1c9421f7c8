"""Alert rules as use cases: declare, list, silence, acknowledge, test, and the controller's evaluation.

Evaluation reads stored windows only, one complete window at a time (``step`` counts consecutive windows),
and computes each endpoint's report once per window for all of its rules, so every replica would reach the
same states and a restarted lease holder carries on from ``alert_states``. The new states, their history and
the notifications (``alert.firing``/``alert.resolved`` per series, ``alert.group`` per endpoint) are written
in one transaction, the outbox's webhook delivery sends them; actions run after, each audited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shipyard.alerts import events
from shipyard.alerts.evaluator import FIRING, SeriesState, Step, initial, step
from shipyard.alerts.metrics import Resolved, resolve
from shipyard.alerts.rules import STABLE, AlertRule, parse_rule, rules_from_document
from shipyard.core.identity import LOCAL_ACTOR, Actor
from shipyard.errors import ConflictError, InvalidArgumentError, NotFoundError, ShipyardError
from shipyard.monitoring.report import MonitoringReport
from shipyard.rollouts.spec import parse_duration
from shipyard.services.alert_actions import ActionResult, AlertActions, alert_target
from shipyard.services.audit import record
from shipyard.services.monitoring import MonitoringService
from shipyard.store import alerts as repo
from shipyard.store import outbox

CATCH_UP_WINDOWS = 3
"""Complete windows a tick evaluates at most per series: a lease holder that was away catches up this far."""
MAX_SILENCE_S = 30 * 86_400
NO_TRAFFIC = Resolved(None, "no stored windows for the endpoint in this window (no traffic)")
LABELLED_SECTIONS = frozenset({"performance", "rewards", "fairness"})
"""Metric sections that read feedback; an endpoint whose rules read none of them skips the join."""


class AlertNotFoundError(NotFoundError):
    pass


@dataclass(slots=True)
class Evaluation:
    """What one tick did: windows evaluated, transitions made, notifications and actions."""

    reports: int = 0
    series: int = 0
    transitions: list[tuple[str, str]] = field(default_factory=list)
    notifications: list[events.AlertEvent] = field(default_factory=list)
    actions: dict[str, ActionResult] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TestResult:
    """``shipyard alerts test``: the value now and what the rule would do, nothing stored."""

    rule: AlertRule
    version: str | None
    window_start: datetime
    value: float | None
    reason: str | None
    state: str
    would: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "endpoint": self.rule.endpoint,
            "version": self.version,
            "window_start": self.window_start.isoformat(),
            "value": self.value,
            "reason": self.reason,
            "state": self.state,
            "would": self.would,
        }


class AlertService:
    def __init__(
        self,
        monitoring: MonitoringService,
        actions: AlertActions,
        *,
        grace_s: float = 2.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.monitoring = monitoring
        self.endpoints = monitoring.endpoints
        self.db = monitoring.db
        self.actions = actions
        self.window_s = monitoring.window_s
        self.grace_s = grace_s
        """A window is evaluated once it ended this long ago: the workers' last flush of it has landed."""
        self.clock = clock or monitoring.clock
        self.evaluated_through: datetime | None = None
        """The newest window this process evaluated: until the next one completes, a tick reads nothing.
        A process that takes the lease over starts with None, so it evaluates at once from the stored states."""

    # -- declaring ------------------------------------------------------------------------------

    def create(self, data: Mapping[str, Any], *, actor: Actor = LOCAL_ACTOR) -> AlertRule:
        """Declare (or replace) one rule; the endpoint must exist and the rule must be valid."""
        rule = parse_rule(data, window_s=self.window_s, source=str(data.get("source") or "cli"))
        self._check_endpoint(rule)
        now = self.clock()
        with self.db.write() as conn:
            before = repo.get_rule(conn, rule.name)
            repo.upsert_rule(conn, rule, by=actor.principal.label, now=now)
            record(
                conn,
                actor,
                "alert.create",
                alert_target(rule.name),
                before=before.rule.to_dict() if before is not None else None,
                after=rule.to_dict(),
                at=now,
            )
        return rule

    def apply(self, document: object, *, actor: Actor = LOCAL_ACTOR) -> tuple[list[str], list[str]]:
        """Make the file's rules the declared ones: create or update each, delete file rules it no longer has.

        Returns (rules applied, rules deleted). Nothing is stored when any rule is invalid.
        """
        rules = rules_from_document(document, window_s=self.window_s)
        for rule in rules:
            self._check_endpoint(rule)
        now = self.clock()
        with self.db.write() as conn:
            stale = [s.rule.name for s in repo.list_rules(conn) if s.rule.source == "file"]
            deleted = [name for name in stale if name not in {r.name for r in rules}]
            for rule in rules:
                before = repo.get_rule(conn, rule.name)
                if before is not None and before.rule == rule:
                    continue
                repo.upsert_rule(conn, rule, by=actor.principal.label, now=now)
                record(conn, actor, "alert.create", alert_target(rule.name), after=rule.to_dict(), at=now)
            for name in deleted:
                repo.delete_rule(conn, name)
                record(conn, actor, "alert.delete", alert_target(name), before={"source": "file"}, at=now)
        return [r.name for r in rules], deleted

    def _check_endpoint(self, rule: AlertRule) -> None:
        try:
            self.endpoints.get(rule.endpoint)
        except NotFoundError:
            known = ", ".join(e.name for e in self.endpoints.list()) or "none"
            raise InvalidArgumentError(
                f"rule {rule.name!r}: unknown endpoint {rule.endpoint!r}; endpoints: {known}"
            ) from None

    def delete(self, name: str, *, actor: Actor = LOCAL_ACTOR) -> None:
        with self.db.write() as conn:
            before = repo.get_rule(conn, name)
            if before is None or not repo.delete_rule(conn, name):
                raise AlertNotFoundError(f"no alert rule named {name!r}; `shipyard alerts list` shows the rules")
            record(conn, actor, "alert.delete", alert_target(name), before=before.rule.to_dict(), at=self.clock())

    # -- reading --------------------------------------------------------------------------------

    def get(self, name: str) -> repo.StoredRule:
        with self.db.read() as conn:
            found = repo.get_rule(conn, name)
        if found is None:
            raise AlertNotFoundError(f"no alert rule named {name!r}; `shipyard alerts list` shows the rules")
        return found

    def rules(self, *, endpoint: str | None = None) -> list[tuple[repo.StoredRule, list[SeriesState]]]:
        with self.db.read() as conn:
            rules = repo.list_rules(conn, endpoint=endpoint)
            states = repo.states(conn, [r.rule.name for r in rules])
        by_rule: dict[str, list[SeriesState]] = defaultdict(list)
        for (name, _), state in states.items():
            by_rule[name].append(state)
        return [(r, by_rule.get(r.rule.name, [])) for r in rules]

    def show(self, name: str) -> dict[str, Any]:
        stored = self.get(name)
        with self.db.read() as conn:
            states = repo.states(conn, [name])
            silences = repo.silences(conn, rule=name)
        now = self.clock()
        return {
            "rule": stored.rule.to_dict(),
            "enabled": stored.enabled,
            "created_by": stored.created_by,
            "states": [_state_dict(s) for s in states.values()],
            "silenced": any(s.active(now) for s in silences),
            "silences": [s.to_dict() for s in silences if s.active(now)],
        }

    def history(self, *, rule: str | None = None, limit: int = 100) -> list[repo.HistoryEntry]:
        if rule is not None:
            self.get(rule)
        with self.db.read() as conn:
            return repo.history(conn, rule=rule, limit=limit)

    # -- silences and acknowledgements ----------------------------------------------------------

    def silence(self, name: str, *, duration: str | float, reason: str, actor: Actor = LOCAL_ACTOR) -> repo.Silence:
        """Withhold the rule's notifications for ``duration``; its state keeps being evaluated."""
        self.get(name)
        seconds = parse_duration(duration, option="--for")
        if not 0 < seconds <= MAX_SILENCE_S:
            raise InvalidArgumentError(f"a silence lasts between 1s and 30d, got {duration!r}")
        if not reason.strip():
            raise InvalidArgumentError("a silence needs a reason (--reason): the next person on call reads it")
        now = self.clock()
        with self.db.write() as conn:
            silence_id = repo.add_silence(
                conn,
                name,
                starts_at=now,
                ends_at=now + timedelta(seconds=seconds),
                reason=reason,
                by=actor.principal.label,
            )
            record(
                conn,
                actor,
                "alert.silence",
                alert_target(name),
                after={"silence": silence_id, "for_s": seconds, "reason": reason},
                at=now,
            )
            return next(s for s in repo.silences(conn, rule=name) if s.id == silence_id)

    def unsilence(self, name: str, *, actor: Actor = LOCAL_ACTOR) -> int:
        self.get(name)
        now = self.clock()
        with self.db.write() as conn:
            ended = repo.expire_silences(conn, name, now)
            if ended:
                record(conn, actor, "alert.unsilence", alert_target(name), after={"ended": ended}, at=now)
        return ended

    def ack(self, name: str, *, actor: Actor = LOCAL_ACTOR) -> list[ActionResult]:
        """Confirm the action a firing rule is waiting on: it runs now, audited with the rule as its cause."""
        rule = self.get(name).rule
        with self.db.read() as conn:
            waiting = [s for s in repo.states(conn, [name]).values() if s.action_state == "waiting"]
        if not waiting:
            raise ConflictError(f"alert {name!r} has no action waiting for confirmation")
        with self.db.write() as conn:
            record(conn, actor, "alert.ack", alert_target(name), after={"action": rule.action}, at=self.clock())
        results = []
        for state in waiting:
            result = self.actions.run(rule, _cause(rule, state), actor=actor)
            self._store_action(state, result)
            results.append(result)
        return results

    def _store_action(self, state: SeriesState, result: ActionResult) -> None:
        outcome = "done" if result.ok else "failed"
        with self.db.write() as conn:
            repo.set_action(conn, state.rule, state.group_key, outcome, result.detail)
            repo.add_history(conn, [_history(state, state.state, f"action {outcome}", result.detail, self.clock())])

    # -- evaluation -----------------------------------------------------------------------------

    def latest_window(self, now: datetime) -> datetime:
        """The start of the newest complete window (ended at least ``grace_s`` ago)."""
        end = now.timestamp() - self.grace_s
        return datetime.fromtimestamp(end - end % self.window_s - self.window_s, tz=now.tzinfo)

    def test(self, name: str) -> TestResult:
        """Evaluate a rule on the newest complete window now; prints what would happen, stores nothing."""
        rule = self.get(name).rule
        start = self.latest_window(self.clock())
        with self.db.read() as conn:
            previous = repo.states(conn, [name]).get((name, rule.group_key)) or initial(rule)
        version, resolved = self._value(rule, self._report(rule.endpoint, start, None), self._stable(rule.endpoint))
        state = replace(previous, window_start=None)
        result = step(rule, state, resolved, window_start=start, window_s=self.window_s)
        would = _would(rule, result)
        return TestResult(rule, version, start, resolved.value, resolved.reason, result.state.state, would)

    def evaluate(self, *, actor: Actor = LOCAL_ACTOR) -> Evaluation:
        """One tick: every enabled rule over each complete window it has not seen yet (the controller's job)."""
        now = self.clock()
        latest = self.latest_window(now)
        if self.evaluated_through == latest:
            return Evaluation()
        with self.db.read() as conn:
            stored = [s for s in repo.list_rules(conn) if s.enabled]
            states = repo.states(conn)
            silences = repo.silences(conn)
            earliest = latest - timedelta(seconds=self.window_s * (CATCH_UP_WINDOWS - 1))
            traffic = repo.windows_with_traffic(conn, since=earliest, until=latest)
        silenced = {s.rule for s in silences if s.active(now)}
        by_endpoint: dict[str, list[AlertRule]] = defaultdict(list)
        for s in stored:
            by_endpoint[s.rule.endpoint].append(s.rule)
        result = Evaluation()
        changed: list[SeriesState] = []
        history: list[dict[str, Any]] = []
        outbox_rows: list[tuple[str, str, Mapping[str, Any]]] = []
        to_act: list[tuple[AlertRule, SeriesState]] = []
        fired_now: list[tuple[AlertRule, SeriesState]] = []
        for endpoint, rules in by_endpoint.items():
            current = {r.name: states.get((r.name, r.group_key)) or initial(r) for r in rules}
            starts = sorted({w for r in rules for w in self._windows(current[r.name], latest)})
            if not starts:
                continue  # every rule has seen the newest complete window: nothing to read this tick
            try:
                stable = self._stable(endpoint)
            except ShipyardError as exc:
                history += [_error(r, f"endpoint: {exc}", now) for r in rules]
                continue
            versions = {stable if r.version == STABLE else r.version for r in rules}
            only = next(iter(versions)) if len(versions) == 1 else None
            labelled = any(r.metric.split(".")[0] in LABELLED_SECTIONS for r in rules)
            group: list[events.AlertEvent] = []
            for start in starts:
                report: MonitoringReport | None = None
                if (endpoint, start) in traffic:  # else nothing was served: every value is "no traffic"
                    try:
                        report = self._report(endpoint, start, only, labels=labelled)
                    except ShipyardError as exc:
                        history += [_error(r, f"report: {exc}", now) for r in rules]
                        break
                    result.reports += 1
                for rule in rules:
                    previous = current[rule.name]
                    if previous.window_start is not None and start <= previous.window_start:
                        continue
                    version, resolved = (
                        self._value(rule, report, stable)
                        if report is not None
                        else (stable if rule.version == STABLE else rule.version, NO_TRAFFIC)
                    )
                    moved = step(
                        rule,
                        previous,
                        resolved,
                        window_start=start,
                        window_s=self.window_s,
                        silenced=rule.name in silenced,
                    )
                    current[rule.name] = moved.state
                    if moved.transition is not None:
                        history.append(_history(moved.state, previous.state, moved.transition, _detail(resolved), now))
                        result.transitions.append((rule.name, moved.transition))
                    if moved.notify is not None:
                        group.append(_event(rule, moved, version, start + timedelta(seconds=self.window_s)))
                    if moved.transition == FIRING:
                        fired_now.append((rule, moved.state))
                    if moved.act:
                        to_act.append((rule, moved.state))
            result.series += len(rules)
            changed += [current[r.name] for r in rules if current[r.name] != (states.get((r.name, r.group_key)))]
            outbox_rows += [(endpoint, e.event, e.to_dict()) for e in group]
            if group:
                outbox_rows.append((endpoint, events.GROUP, events.AlertGroup(endpoint, now, group).to_dict()))
            result.notifications.extend(group)
        if changed or history or outbox_rows:
            with self.db.write() as conn:
                fired = {(r.name, s.group_key) for r, s in fired_now}
                repo.save_states(conn, [s for s in changed if (s.rule, s.group_key) in fired], now)
                repo.save_states(conn, [s for s in changed if (s.rule, s.group_key) not in fired], now, actions=False)
                repo.add_history(conn, history)
                outbox.add(conn, outbox_rows, now)  # last: it may wait on the outbox lock
        self.evaluated_through = latest
        for rule, state in to_act:
            action = self.actions.run(rule, _cause(rule, state), actor=actor)
            self._store_action(state, action)
            result.actions[rule.name] = action
        return result

    def _windows(self, state: SeriesState, latest: datetime) -> list[datetime]:
        step_s = timedelta(seconds=self.window_s)
        first = latest - step_s * (CATCH_UP_WINDOWS - 1)
        if state.window_start is not None:
            first = max(first, state.window_start + step_s)
        out = []
        while first <= latest:
            out.append(first)
            first += step_s
        return out

    def _stable(self, endpoint: str) -> str:
        return self.endpoints.registry.get(self.endpoints.get(endpoint).model).ref

    def _report(self, endpoint: str, start: datetime, version: str | None, *, labels: bool = True) -> MonitoringReport:
        end = start + timedelta(seconds=self.window_s)
        return self.monitoring.report(endpoint, window=float(self.window_s), version=version, at=end, labels=labels)

    @staticmethod
    def _value(rule: AlertRule, report: MonitoringReport, stable: str) -> tuple[str, Resolved]:
        ref = stable if rule.version == STABLE else rule.version
        entry = next((v for v in report.versions if v.version == ref), None)
        if entry is None:
            return ref, Resolved(None, f"no stored windows for {ref} in this window (no traffic)")
        return ref, resolve(entry, rule.metric, feature=rule.feature)


def _state_dict(s: SeriesState) -> dict[str, Any]:
    return {
        "group": s.group_key,
        "state": s.state,
        "value": s.value,
        "held": s.held,
        "since": s.since.isoformat() if s.since else None,
        "window_start": s.window_start.isoformat() if s.window_start else None,
        "fired_at": s.fired_at.isoformat() if s.fired_at else None,
        "resolved_at": s.resolved_at.isoformat() if s.resolved_at else None,
        "notified": s.notified,
        "action_state": s.action_state,
        "action_detail": s.action_detail,
    }


def _detail(resolved: Resolved) -> dict[str, Any] | None:
    return {"reason": resolved.reason} if resolved.reason else None


def _history(
    state: SeriesState, from_state: str, to_state: str, detail: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    return {
        "rule": state.rule,
        "group_key": state.group_key,
        "from_state": from_state,
        "to_state": to_state,
        "value": state.value,
        "detail": dict(detail) if detail is not None else None,
        "at": now,
    }


def _error(rule: AlertRule, message: str, now: datetime) -> dict[str, Any]:
    return {
        "rule": rule.name,
        "group_key": rule.group_key,
        "from_state": "error",
        "to_state": "error",
        "value": None,
        "detail": {"error": message},
        "at": now,
    }


def _event(rule: AlertRule, moved: Step, version: str, window_end: datetime) -> events.AlertEvent:
    s = moved.state
    firing = moved.notify == FIRING
    value = "n/a" if s.value is None else f"{s.value:.4g}"
    summary = f"{rule.name} {'firing' if firing else 'resolved'}: {rule.describe()} (value {value})"
    return events.AlertEvent(
        status="firing" if firing else "resolved",
        rule=rule.name,
        endpoint=rule.endpoint,
        metric=rule.metric,
        value=s.value,
        op=rule.op,
        threshold=rule.threshold,
        severity=rule.severity,
        started_at=s.fired_at or window_end,
        version=version,
        feature=rule.feature,
        labels=rule.labels,
        ended_at=None if firing else s.resolved_at,
        window_end=window_end,
        action=rule.action,
        summary=summary,
    )


def _cause(rule: AlertRule, state: SeriesState) -> dict[str, Any]:
    return {
        "alert": rule.name,
        "metric": rule.metric,
        "value": state.value,
        "threshold": rule.threshold,
        "fired_at": state.fired_at.isoformat() if state.fired_at else None,
    }


def _would(rule: AlertRule, moved: Step) -> str:
    if moved.state.value is None:
        return "do nothing: no value for this window"
    if moved.transition == FIRING or moved.state.state == FIRING:
        then = f"; then {rule.action}" + (" after an ack" if rule.confirm else "") if rule.action else ""
        return f"fire and notify{then}"
    if moved.state.state == "pending":
        return f"go pending ({moved.state.held}/{rule.for_windows} windows)"
    return "stay quiet: the condition does not hold"
