"""Alerts repository: rules, each series' evaluated state, the history of transitions, and silences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.alerts.evaluator import SeriesState
from shipyard.alerts.rules import AlertRule, rule_from_dict
from shipyard.store.tables import alert_history, alert_rules, alert_silences, alert_states, monitor_windows


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _maybe_utc(value: datetime | None) -> datetime | None:
    return _utc(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class StoredRule:
    rule: AlertRule
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    rule: str
    group_key: str
    from_state: str
    to_state: str
    value: float | None
    detail: Mapping[str, Any] | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "group": self.group_key,
            "from": self.from_state,
            "to": self.to_state,
            "value": self.value,
            "detail": dict(self.detail) if self.detail is not None else None,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    rule: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    expired_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.expired_at is None and self.starts_at <= now < self.ends_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "reason": self.reason,
            "created_by": self.created_by,
            "expired_at": self.expired_at.isoformat() if self.expired_at is not None else None,
        }


def _rule(row: Any) -> StoredRule:
    return StoredRule(
        rule_from_dict(row.spec), bool(row.enabled), row.created_by, _utc(row.created_at), _utc(row.updated_at)
    )


def upsert_rule(conn: Connection, rule: AlertRule, *, by: str, now: datetime) -> bool:
    """Insert or replace a rule; True when it was new."""
    found = conn.execute(sa.select(alert_rules.c.name).where(alert_rules.c.name == rule.name)).first()
    if found is None:
        conn.execute(
            sa.insert(alert_rules).values(
                name=rule.name, spec=rule.to_dict(), source=rule.source, created_by=by, created_at=now, updated_at=now
            )
        )
        return True
    conn.execute(
        sa.update(alert_rules)
        .where(alert_rules.c.name == rule.name)
        .values(spec=rule.to_dict(), source=rule.source, updated_at=now)
    )
    return False


def get_rule(conn: Connection, name: str) -> StoredRule | None:
    row = conn.execute(sa.select(alert_rules).where(alert_rules.c.name == name)).first()
    return _rule(row) if row is not None else None


def list_rules(conn: Connection, *, endpoint: str | None = None) -> list[StoredRule]:
    rules = [_rule(r) for r in conn.execute(sa.select(alert_rules).order_by(alert_rules.c.name))]
    return [r for r in rules if endpoint is None or r.rule.endpoint == endpoint]


def delete_rule(conn: Connection, name: str) -> bool:
    """Delete a rule with its states and silences (its history stays, for the record)."""
    conn.execute(sa.delete(alert_states).where(alert_states.c.rule == name))
    conn.execute(sa.delete(alert_silences).where(alert_silences.c.rule == name))
    return bool(conn.execute(sa.delete(alert_rules).where(alert_rules.c.name == name)).rowcount)


def _state(row: Any) -> SeriesState:
    return SeriesState(
        rule=row.rule,
        group_key=row.group_key,
        state=row.state,
        value=row.value,
        held=row.held,
        since=_maybe_utc(row.since),
        window_start=_maybe_utc(row.window_start),
        fired_at=_maybe_utc(row.fired_at),
        resolved_at=_maybe_utc(row.resolved_at),
        notified=bool(row.notified),
        action_state=row.action_state,
        action_detail=dict(row.action_detail) if row.action_detail is not None else None,
        labels={str(k): str(v) for k, v in dict(row.labels or {}).items()},
    )


def states(conn: Connection, rules: Sequence[str] | None = None) -> dict[tuple[str, str], SeriesState]:
    query = sa.select(alert_states)
    if rules is not None:
        query = query.where(alert_states.c.rule.in_(list(rules)))
    return {(r.rule, r.group_key): _state(r) for r in conn.execute(query)}


def save_states(conn: Connection, changed: Sequence[SeriesState], now: datetime, *, actions: bool = True) -> None:
    """Write each series' state (insert the first time, update after).

    ``actions=False`` leaves the stored action fields alone on update: an evaluation that read the state
    before an operator's ack committed must not put ``waiting`` back.
    """
    if not changed:
        return
    keys = {(s.rule, s.group_key) for s in changed}
    existing = {
        (r.rule, r.group_key)
        for r in conn.execute(
            sa.select(alert_states.c.rule, alert_states.c.group_key).where(
                alert_states.c.rule.in_(sorted({k[0] for k in keys}))
            )
        )
    }
    inserts, updates = [], []
    for s in changed:
        values = {
            "state": s.state,
            "labels": dict(s.labels),
            "value": s.value,
            "held": s.held,
            "since": s.since or now,
            "evaluated_at": now,
            "fired_at": s.fired_at,
            "resolved_at": s.resolved_at,
            "window_start": s.window_start,
            "notified": s.notified,
            "action_state": s.action_state,
            "action_detail": s.action_detail,
        }
        if (s.rule, s.group_key) in existing:
            if not actions:
                del values["action_state"], values["action_detail"]
            updates.append({"b_rule": s.rule, "b_group": s.group_key, **values})
        else:
            inserts.append({"rule": s.rule, "group_key": s.group_key, **values})
    if inserts:
        conn.execute(sa.insert(alert_states), inserts)
    if updates:
        statement = (
            sa.update(alert_states)
            .where(alert_states.c.rule == sa.bindparam("b_rule"), alert_states.c.group_key == sa.bindparam("b_group"))
            .values({k: sa.bindparam(k) for k in updates[0] if not k.startswith("b_")})
        )
        conn.execute(statement, updates)


def set_action(conn: Connection, rule: str, group_key: str, action_state: str, detail: Mapping[str, Any]) -> None:
    """Record what the series' action did, leaving the evaluated state as the evaluator last wrote it."""
    conn.execute(
        sa.update(alert_states)
        .where(alert_states.c.rule == rule, alert_states.c.group_key == group_key)
        .values(action_state=action_state, action_detail=dict(detail))
    )


def windows_with_traffic(conn: Connection, *, since: datetime, until: datetime) -> set[tuple[str, datetime]]:
    """(endpoint, window start) of every stored window starting in [since, until]: one indexed read a tick."""
    rows = conn.execute(
        sa.select(monitor_windows.c.endpoint, monitor_windows.c.window_start)
        .where(monitor_windows.c.window_start >= since, monitor_windows.c.window_start <= until)
        .distinct()
    )
    return {(r.endpoint, _utc(r.window_start)) for r in rows}


def add_history(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> None:
    if entries:
        conn.execute(sa.insert(alert_history), [dict(e) for e in entries])


def history(conn: Connection, *, rule: str | None = None, limit: int = 100) -> list[HistoryEntry]:
    query = sa.select(alert_history).order_by(alert_history.c.id.desc()).limit(limit)
    if rule is not None:
        query = query.where(alert_history.c.rule == rule)
    return [
        HistoryEntry(r.rule, r.group_key, r.from_state, r.to_state, r.value, r.detail, _utc(r.at))
        for r in conn.execute(query)
    ]


def _silence(row: Any) -> Silence:
    return Silence(
        row.id, row.rule, _utc(row.starts_at), _utc(row.ends_at), row.reason, row.created_by, _maybe_utc(row.expired_at)
    )


def add_silence(conn: Connection, rule: str, *, starts_at: datetime, ends_at: datetime, reason: str, by: str) -> int:
    result = conn.execute(
        sa.insert(alert_silences).values(rule=rule, starts_at=starts_at, ends_at=ends_at, reason=reason, created_by=by)
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def silences(conn: Connection, *, rule: str | None = None) -> list[Silence]:
    query = sa.select(alert_silences).order_by(alert_silences.c.id)
    if rule is not None:
        query = query.where(alert_silences.c.rule == rule)
    return [_silence(r) for r in conn.execute(query)]


def expire_silences(conn: Connection, rule: str, now: datetime) -> int:
    """End every silence of ``rule`` now; returns how many were active."""
    return int(
        conn.execute(
            sa.update(alert_silences)
            .where(alert_silences.c.rule == rule, alert_silences.c.expired_at.is_(None), alert_silences.c.ends_at > now)
            .values(expired_at=now)
        ).rowcount
    )
