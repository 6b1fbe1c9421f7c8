"""The alert state machine over consecutive windows: for-duration, de-duplication, silences, restarts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shipyard.alerts.evaluator import FIRING, INACTIVE, PENDING, RESOLVED, SeriesState, Step, initial, step
from shipyard.alerts.metrics import Resolved
from shipyard.alerts.rules import AlertRule

W = 60
T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULE = AlertRule("drift", "fraud", "drift.share", ">", 0.3, for_windows=2, action="rollback")


def _run(
    rule: AlertRule,
    values: list[float | None],
    *,
    state: SeriesState | None = None,
    start: int = 0,
    silenced: bool = False,
) -> list[Step]:
    current = state or initial(rule)
    steps = []
    for i, value in enumerate(values, start=start):
        s = step(
            rule,
            current,
            Resolved(value, None if value is not None else "no data"),
            window_start=T0 + timedelta(seconds=W * i),
            window_s=W,
            silenced=silenced,
        )
        steps.append(s)
        current = s.state
    return steps


def test_fires_only_after_the_condition_holds_for_consecutive_windows_then_resolves() -> None:
    steps = _run(RULE, [0.1, 0.5, 0.6, 0.7, 0.1])
    assert [s.state.state for s in steps] == [INACTIVE, PENDING, FIRING, FIRING, RESOLVED]
    assert [s.transition for s in steps] == [None, PENDING, FIRING, None, RESOLVED]
    assert [s.notify for s in steps] == [None, None, FIRING, None, RESOLVED]  # once per episode
    assert [s.act for s in steps] == [False, False, True, False, False]
    assert steps[2].state.fired_at == T0 + timedelta(seconds=3 * W)  # the end of the window that fired it
    assert steps[4].state.resolved_at == T0 + timedelta(seconds=5 * W)


def test_a_single_breach_between_clean_windows_goes_pending_and_back() -> None:
    steps = _run(RULE, [0.5, 0.1, 0.5, 0.1])
    assert [s.state.state for s in steps] == [PENDING, INACTIVE, PENDING, INACTIVE]
    assert all(s.notify is None for s in steps)


def test_the_same_window_evaluated_twice_counts_once() -> None:
    first = step(RULE, initial(RULE), Resolved(0.5), window_start=T0, window_s=W)
    again = step(RULE, first.state, Resolved(0.9), window_start=T0, window_s=W)
    assert again.state == first.state and again.transition is None


def test_a_gap_between_windows_restarts_the_count() -> None:
    first = step(RULE, initial(RULE), Resolved(0.5), window_start=T0, window_s=W)
    later = step(RULE, first.state, Resolved(0.5), window_start=T0 + timedelta(seconds=3 * W), window_s=W)
    assert later.state.state == PENDING and later.state.held == 1


def test_a_value_that_could_not_be_computed_keeps_the_state() -> None:
    steps = _run(RULE, [0.5, 0.6, None, None])
    assert [s.state.state for s in steps] == [PENDING, FIRING, FIRING, FIRING]
    assert steps[2].reason == "no data" and steps[2].state.value is None and steps[2].notify is None


def test_a_silence_withholds_notifications_but_keeps_the_state() -> None:
    steps = _run(RULE, [0.5, 0.6, 0.1], silenced=True)
    assert [s.state.state for s in steps] == [PENDING, FIRING, RESOLVED]
    assert [s.notify for s in steps] == [None, None, None]  # resolving what was never announced says nothing


def test_a_series_still_firing_when_its_silence_ends_notifies_once_then() -> None:
    quiet = _run(RULE, [0.5, 0.6], silenced=True)
    after = _run(RULE, [0.7, 0.8, 0.1], state=quiet[-1].state, start=2)
    assert [s.notify for s in after] == [FIRING, None, RESOLVED]


def test_confirmation_holds_the_action_until_an_ack() -> None:
    rule = replace(RULE, confirm=True)
    steps = _run(rule, [0.5, 0.6])
    assert steps[-1].state.state == FIRING and not steps[-1].act
    assert steps[-1].state.action_state == "waiting"


def test_a_restart_resumes_from_the_stored_state() -> None:
    """What is stored (every field of SeriesState) is all the evaluator needs: a new process carries on."""
    before = _run(RULE, [0.5])[-1].state
    stored = SeriesState(**{name: getattr(before, name) for name in SeriesState.__slots__})
    resumed = _run(RULE, [0.6], state=stored, start=1)
    assert resumed[-1].transition == FIRING and resumed[-1].notify == FIRING


def test_comparisons_below_a_threshold() -> None:
    rule = AlertRule("acc", "fraud", "performance.accuracy", "<", 0.8, for_windows=1)
    assert [s.state.state for s in _run(rule, [0.9, 0.7, 0.85])] == [INACTIVE, FIRING, RESOLVED]
