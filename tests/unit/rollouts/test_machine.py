"""The rollout state machine: every strategy's path, holds, rollbacks, pauses, and what traffic each state routes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shipyard.core.endpoints import Arm, TrafficPolicy, route
from shipyard.errors import ConflictError, InvalidArgumentError, InvalidRefError
from shipyard.rollouts.machine import (
    EventKind,
    RolloutState,
    RolloutStatus,
    Transition,
    abort,
    analysis_since,
    next_action,
    pause,
    policy_for,
    promote,
    resume,
    start,
    step_remaining_s,
    tick,
)
from shipyard.rollouts.spec import (
    Analysis,
    Outcome,
    RolloutGates,
    RolloutSpec,
    Strategy,
    format_duration,
    parse_duration,
    parse_percent,
    parse_steps,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PASS = Analysis(Outcome.PASS, "all gates passed", {"candidate": {"requests": 900, "errors": 1}})
HOLD = Analysis(Outcome.HOLD, "12 of 100 candidate requests", {"candidate": {"requests": 12}})
FAIL = Analysis(Outcome.FAIL, "error rate 9% > 5%", {"candidate": {"requests": 400, "errors": 36}})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def begin(strategy: str = "canary", **options: Any) -> RolloutState:
    if strategy == "canary":
        options.setdefault("steps", "5,25,50,100")
        options.setdefault("interval_s", 60)
    spec = RolloutSpec.create(strategy, "fraud:2", **options)
    return start(spec, rollout_id="r-1", endpoint="fraud", stable="fraud:1", now=T0).state


def kinds(transition: Transition) -> list[str]:
    return [e.kind.value for e in transition.events]


# --- every strategy's happy path -------------------------------------------------------------------------


def test_replace_completes_at_start_with_the_candidate_as_stable() -> None:
    spec = RolloutSpec.create("replace", "fraud:2")
    t = start(spec, rollout_id="r-1", endpoint="fraud", stable="fraud:1", now=T0)
    assert kinds(t) == ["started", "completed"]
    assert t.state.status is RolloutStatus.COMPLETED and t.state.weight == 1.0
    assert policy_for(t.state) == TrafficPolicy("fraud:2")
    assert t.state.events == t.events


def test_canary_walks_every_step_and_completes_on_passing_analyses() -> None:
    state = begin()
    assert (state.status, state.step_index, state.weight) == (RolloutStatus.RUNNING, 0, 0.05)
    assert tick(state, PASS, at(59)).changed is False  # the step's interval has not elapsed
    seen = []
    for n, expected_weight in ((1, 0.25), (2, 0.5)):
        t = tick(state, PASS, at(60 * n))
        assert kinds(t) == ["step_passed"]
        state = t.state
        assert (state.step_index, state.weight, state.step_started_at) == (n, expected_weight, at(60 * n))
        seen.append(t.events[0].message)
    assert seen == ["step 1 of 4 (5%) passed; now 25%", "step 2 of 4 (25%) passed; now 50%"]
    t = tick(state, PASS, at(180))
    assert kinds(t) == ["step_passed", "completed"]
    assert (t.state.status, t.state.weight) == (RolloutStatus.COMPLETED, 1.0)
    assert [e.kind for e in t.state.events] == [EventKind.STARTED, *[EventKind.STEP_PASSED] * 3, EventKind.COMPLETED]
    assert t.events[0].evidence == PASS.evidence


def test_canary_waits_for_an_analysis_once_the_step_ends() -> None:
    state = begin()
    t = tick(state, None, at(600))
    assert t.changed is False and t.state is state
    assert next_action(state, at(600)).startswith("step 1 of 4 (5%) ended; waiting for its analysis")


def test_canary_step_is_held_once_when_too_few_requests_and_passes_later() -> None:
    state = begin()
    held = tick(state, HOLD, at(60))
    assert kinds(held) == ["held"]
    assert held.events[0].message == "step 1 of 4 (5%) held: 12 of 100 candidate requests; analysis repeats"
    assert held.events[0].evidence == HOLD.evidence
    assert (held.state.weight, held.state.step_index, held.state.held_at) == (0.05, 0, at(60))
    again = tick(held.state, HOLD, at(90))
    assert again.changed is False  # recorded once per step end, not on every tick
    assert "held for more evidence" in next_action(held.state, at(90))
    passed = tick(again.state, PASS, at(120))
    assert kinds(passed) == ["step_passed"]
    assert (passed.state.weight, passed.state.held_at, passed.state.step_started_at) == (0.25, None, at(120))
    # A hold on the next step is recorded again.
    assert kinds(tick(passed.state, HOLD, at(180))) == ["held"]


@pytest.mark.parametrize("when", [10, 60, 600], ids=["mid-step", "step-end", "long-after"])
def test_canary_rolls_back_at_the_first_fail_with_weight_zero_at_once(when: int) -> None:
    state = tick(begin(), PASS, at(60)).state
    t = tick(state, FAIL, at(60 + when))
    assert kinds(t) == ["rolled_back"]
    assert (t.state.status, t.state.weight) == (RolloutStatus.ROLLED_BACK, 0.0)
    assert t.events[0].weight == 0.0 and t.events[0].evidence == FAIL.evidence
    assert t.events[0].message == "a gate failed step 2 of 4 (25%): error rate 9% > 5%; all traffic back on fraud:1"
    assert policy_for(t.state) == TrafficPolicy("fraud:1")


def test_a_paused_canary_still_rolls_back_on_a_failing_gate_but_ignores_passes() -> None:
    paused = pause(begin(), at(10)).state
    assert tick(paused, PASS, at(500)).changed is False
    t = tick(paused, FAIL, at(500))
    assert (t.state.status, t.state.paused_at) == (RolloutStatus.ROLLED_BACK, None)


def test_blue_green_switches_at_once_bakes_then_completes() -> None:
    state = begin("blue-green", bake_s="10m")
    assert (state.weight, policy_for(state)) == (1.0, TrafficPolicy("fraud:1", candidate="fraud:2", weight=1.0))
    assert tick(state, PASS, at(599)).changed is False
    assert next_action(state, at(410)).startswith("baking until 2024-05-01T12:10:00+00:00 (3m 10s left)")
    t = tick(state, PASS, at(600))
    assert kinds(t) == ["completed"] and t.state.status is RolloutStatus.COMPLETED
    assert policy_for(t.state) == TrafficPolicy("fraud:2")


@pytest.mark.parametrize(
    ("act", "expected"),
    [
        (lambda s: abort(s, at(120), reason="latency looks off"), ["aborted", "rolled_back"]),
        (lambda s: tick(s, FAIL, at(120)), ["rolled_back"]),
    ],
    ids=["abort", "failed-gate"],
)
def test_blue_green_switches_back_instantly_during_the_bake(act: Any, expected: list[str]) -> None:
    t = act(begin("blue-green", bake_s=600))
    assert kinds(t) == expected
    assert (t.state.status, t.state.weight, policy_for(t.state)) == (
        RolloutStatus.ROLLED_BACK,
        0.0,
        TrafficPolicy("fraud:1"),
    )


def test_blue_green_with_no_bake_completes_at_start_and_holds_at_bake_end_without_evidence() -> None:
    spec = RolloutSpec.create("blue-green", "fraud:2", bake_s=0)
    assert start(spec, rollout_id="r", endpoint="fraud", stable="fraud:1", now=T0).state.status is (
        RolloutStatus.COMPLETED
    )
    held = tick(begin("blue-green", bake_s=60), HOLD, at(60))
    assert kinds(held) == ["held"] and held.state.status is RolloutStatus.RUNNING


def test_ab_auto_promotes_a_significant_candidate_win() -> None:
    state = begin("ab", split=0.5, auto_promote=True)
    assert policy_for(state) == TrafficPolicy("fraud:1", candidate="fraud:2", weight=0.5)
    assert tick(state, Analysis.for_ab(None, "p=0.4"), at(3600)).changed is False
    t = tick(state, Analysis.for_ab(Arm.CANDIDATE, "p=0.01", {"p_value": 0.01}), at(7200))
    assert kinds(t) == ["promoted", "completed"]
    assert t.events[0].message == "fraud:2 won the A/B test: p=0.01" and t.events[0].evidence == {"p_value": 0.01}
    assert policy_for(t.state) == TrafficPolicy("fraud:2")


def test_ab_auto_promote_rolls_back_when_control_wins() -> None:
    t = tick(begin("ab", auto_promote=True), Analysis.for_ab(Arm.STABLE), at(60))
    assert kinds(t) == ["rolled_back"] and t.state.weight == 0.0


def test_ab_without_auto_promote_declares_the_winner_once_and_waits_for_a_person() -> None:
    state = begin("ab", split=0.3)
    assert "waiting for a significant A/B result (30% to fraud:2)" in next_action(state, at(1))
    t = tick(state, PASS, at(60))
    assert kinds(t) == ["winner"] and t.state.status is RolloutStatus.RUNNING and t.state.winner is Arm.CANDIDATE
    assert tick(t.state, PASS, at(120)).changed is False
    assert next_action(t.state, at(120)).startswith("fraud:2 won the A/B test; promote")
    done = promote(t.state, at(180))
    assert kinds(done) == ["promoted", "completed"] and policy_for(done.state) == TrafficPolicy("fraud:2")


def test_ab_keeps_the_sequential_state_the_next_look_needs_without_announcing_it() -> None:
    state = begin("ab")
    look = Analysis.for_ab(None, "no difference yet", {"p_value": 0.4}, carry={"p_value": 0.4, "looks": 1})
    t = tick(state, look, at(60))
    assert t.changed and t.events == () and t.state.carry == {"p_value": 0.4, "looks": 1}
    assert t.state.events == state.events
    assert tick(t.state, look, at(120)).changed is False  # the same memory again: nothing to save
    won = tick(t.state, Analysis.for_ab(Arm.CANDIDATE, carry={"p_value": 0.01, "looks": 2}), at(180))
    assert kinds(won) == ["winner"] and won.state.carry == {"p_value": 0.01, "looks": 2}
    assert won.state.winner is Arm.CANDIDATE
    assert Analysis.for_ab(Arm.STABLE).outcome is Outcome.FAIL


def test_shadow_sends_only_a_sampled_copy_and_completes_only_by_hand() -> None:
    state = begin("shadow", sample=0.2)
    assert state.weight == 0.0
    assert policy_for(state) == TrafficPolicy("fraud:1", shadow="fraud:2", shadow_sample=0.2)
    for analysis in (PASS, HOLD, FAIL, None):
        assert tick(state, analysis, at(86400)).changed is False
    t = promote(state, at(100))
    assert kinds(t) == ["promoted", "completed"]
    assert policy_for(t.state) == TrafficPolicy("fraud:2")


# --- pause, resume, manual promote, refused transitions -------------------------------------------------------


def test_time_paused_does_not_count_toward_the_step_interval() -> None:
    state = pause(begin(), at(20)).state  # 20 s of the 60 s step have run
    assert step_remaining_s(state, at(500)) == 40
    assert tick(state, PASS, at(500)).changed is False
    state = resume(state, at(120)).state  # paused 100 s
    assert state.step_paused_s == 100 and step_remaining_s(state, at(130)) == 30
    assert tick(state, PASS, at(159)).changed is False
    state = resume(pause(state, at(140)).state, at(150)).state  # a second 10 s pause adds up
    assert tick(state, PASS, at(169)).changed is False
    t = tick(state, PASS, at(170))
    assert t.state.weight == 0.25 and t.state.step_paused_s == 0
    assert analysis_since(state) == T0  # the evidence window still covers the whole step


def test_a_pause_stops_the_blue_green_bake_clock() -> None:
    state = resume(pause(begin("blue-green", bake_s=60), at(30)).state, at(330)).state
    assert tick(state, PASS, at(359)).changed is False
    assert tick(state, PASS, at(360)).state.status is RolloutStatus.COMPLETED


def test_pause_and_resume_are_recorded_and_keep_the_current_weight() -> None:
    state = tick(begin(), PASS, at(60)).state
    paused = pause(state, at(70))
    assert kinds(paused) == ["paused"] and paused.state.status is RolloutStatus.PAUSED
    assert policy_for(paused.state) == TrafficPolicy("fraud:1", candidate="fraud:2", weight=0.25)
    assert next_action(paused.state, at(80)).startswith("paused at step 2 of 4 (25%) with 50s left in the step")
    resumed = resume(paused.state, at(3670))
    assert kinds(resumed) == ["resumed"] and resumed.events[0].message == "resumed after 1h paused"


def test_manual_promote_moves_a_canary_one_step_and_resumes_it_if_paused() -> None:
    state = pause(begin(), at(10)).state
    t = promote(state, at(20))
    assert kinds(t) == ["promoted"]
    assert (t.state.status, t.state.weight, t.state.step_started_at, t.state.paused_at) == (
        RolloutStatus.RUNNING,
        0.25,
        at(20),
        None,
    )
    assert t.events[0].evidence == {"manual": True}
    full = promote(t.state, at(30), full=True)
    assert kinds(full) == ["promoted", "completed"] and full.state.status is RolloutStatus.COMPLETED


def test_promoting_a_canary_from_its_last_step_below_100_completes_it() -> None:
    state = begin(steps="50,100")
    assert kinds(promote(state, at(1))) == ["promoted", "completed"]


def test_abort_rolls_back_from_any_step_and_records_the_reason() -> None:
    state = tick(tick(begin(), PASS, at(60)).state, PASS, at(120)).state
    t = abort(state, at(130), reason="on-call said so")
    assert kinds(t) == ["aborted", "rolled_back"]
    assert t.events[0].message == "aborted by hand at 50%: on-call said so"
    assert t.events[0].evidence == {"manual": True, "reason": "on-call said so"}
    assert all(e.weight == 0.0 for e in t.events) and t.state.updated_at == at(130)


@pytest.mark.parametrize(
    ("make", "act", "message"),
    [
        (lambda: begin(), lambda s: resume(s, at(1)), "is not paused"),
        (lambda: pause(begin(), at(1)).state, lambda s: pause(s, at(2)), "already paused since"),
        (lambda: begin("replace"), lambda s: promote(s, at(1)), "it completed at"),
        (lambda: begin("replace"), lambda s: abort(s, at(1)), "it completed at"),
        (lambda: abort(begin(), at(1)).state, lambda s: pause(s, at(2)), "it was rolled back at"),
        (lambda: abort(begin(), at(1)).state, lambda s: resume(s, at(2)), "it was rolled back at"),
        (lambda: abort(begin(), at(1)).state, lambda s: promote(s, at(2)), "it was rolled back at"),
        (lambda: abort(begin(), at(1)).state, lambda s: abort(s, at(2)), "it was rolled back at"),
    ],
)
def test_invalid_transitions_are_refused_with_a_conflict(make: Any, act: Any, message: str) -> None:
    with pytest.raises(ConflictError, match=message) as info:
        act(make())
    assert "r-1" in str(info.value)


@pytest.mark.parametrize("status", ["completed", "rolled_back"])
def test_ticking_a_finished_rollout_changes_nothing(status: str) -> None:
    state = begin("replace") if status == "completed" else abort(begin(), at(1)).state
    for analysis in (PASS, FAIL, None):
        assert tick(state, analysis, at(1000)).state is state


def test_rolling_out_the_version_already_serving_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="fraud:2 already serves endpoint 'fraud'"):
        start(RolloutSpec.create("canary", "fraud:2"), rollout_id="r", endpoint="fraud", stable="fraud:2", now=T0)


# --- specs: parsing and refusing bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "options", "message"),
    [
        (
            "blue_grene",
            {},
            "unknown rollout strategy 'blue_grene'; use one of: replace, blue-green, canary, ab, shadow",
        ),
        ("canary", {"steps": "5,50,25,100"}, "strictly increasing, but 25% follows 50% in 5,50,25,100"),
        ("canary", {"steps": "5,25,25,100"}, "25% follows 25%"),
        ("canary", {"steps": "5,25,50"}, "must end at 100%, got 5,25,50"),
        ("canary", {"steps": "5,150"}, "step 150% is outside \\(0%, 100%\\]"),
        ("canary", {"steps": "0,50,100"}, "step 0% is outside"),
        ("canary", {"steps": (-0.1, 1.0)}, "step -10% is outside"),
        ("canary", {"steps": "100"}, "needs a step below 100%.*got 100"),
        ("canary", {"steps": "five,ten"}, "percentages such as 5,25,50,100, got 'five,ten'"),
        ("canary", {"steps": ""}, "got ''"),
        ("canary", {"interval_s": 0}, "interval must be above 0 seconds, got 0"),
        ("canary", {"interval_s": -5}, "got -5"),
        ("canary", {"interval_s": "soon"}, "interval must be a duration such as 30s, 10m or 1h30m, got 'soon'"),
        ("blue-green", {"bake_s": -1}, "bake time must be 0 seconds or more, got -1"),
        ("ab", {"split": 1.5}, "split must be a fraction in \\(0, 1\\).*got 1.5"),
        ("ab", {"split": -0.2}, "got -0.2"),
        ("ab", {"split": 0.0}, "got 0.0"),
        ("ab", {"alpha": 1.0}, "alpha must be a significance level in \\(0, 1\\).*got 1.0"),
        ("shadow", {"sample": 0.0}, "shadow sample must be a fraction in \\(0, 1\\], got 0.0"),
        ("shadow", {"sample": 1.2}, "got 1.2"),
        ("canary", {"gates": {"max_error_rate": 1.5}}, "max_error_rate must be a fraction in \\[0, 1\\], got 1.5"),
        ("canary", {"gates": {"max_latency_ratio": 0}}, "max_latency_ratio must be a ratio above 0.*got 0"),
        ("canary", {"gates": {"min_requests": 0}}, "min_requests must be a whole number from 1, got 0"),
        ("canary", {"gates": {"max_eror_rate": 0.1}}, "unknown gate 'max_eror_rate'; gates are: max_error_rate"),
        ("ab", {"steps": "5,100"}, "option 'steps' applies to canary rollouts, not to 'ab'"),
        (
            "replace",
            {"gates": {}},
            "option 'gates' applies to ab, blue-green, canary, shadow rollouts, not to 'replace'",
        ),
        ("canary", {"auto_promote": True}, "option 'auto_promote' applies to ab rollouts"),
    ],
)
def test_bad_specs_are_refused_naming_the_value(strategy: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        RolloutSpec.create(strategy, "fraud:2", **options)


def test_a_malformed_candidate_ref_is_refused() -> None:
    with pytest.raises(InvalidRefError, match="fraud:zero"):
        RolloutSpec.create("replace", "fraud:zero")


@pytest.mark.parametrize(
    ("text", "steps"),
    [("5,25,50,100", (0.05, 0.25, 0.5, 1.0)), (" 10%, 100 ", (0.1, 1.0)), ("12.5,100", (0.125, 1.0))],
)
def test_parse_steps_reads_percentages_as_fractions(text: str, steps: tuple[float, ...]) -> None:
    assert parse_steps(text) == pytest.approx(steps)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), (45, 45), ("30s", 30), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400), ("2d", 172800), ("500ms", 0.5)],
)
def test_parse_duration_reads_cli_durations_as_seconds(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (45, "45s"), (190, "3m 10s"), (3600, "1h"), (90061, "1d 1h")])
def test_format_duration_is_short_and_human(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_split_is_given_as_a_percentage_on_the_command_line() -> None:
    assert parse_percent("50") == 0.5 and parse_percent("12.5%") == 0.125
    with pytest.raises(InvalidArgumentError, match="split must be a percentage such as 50, got 'half'"):
        parse_percent("half", option="split")


def test_create_fills_defaults_and_keeps_what_was_given() -> None:
    spec = RolloutSpec.create(Strategy.CANARY, "fraud:2", steps=[0.1, 1.0], interval_s="2m", gates={"min_requests": 5})
    assert (spec.steps, spec.interval_s, spec.gates) == ((0.1, 1.0), 120.0, RolloutGates(min_requests=5))
    assert Strategy.parse("Blue_Green") is Strategy.BLUE_GREEN


def test_an_ab_winner_is_the_stable_or_the_candidate_arm() -> None:
    with pytest.raises(InvalidArgumentError, match="A/B winner must be"):
        Analysis.for_ab(Arm.SHADOW)


# --- persistence, policies, routing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "options"),
    [
        ("replace", {}),
        ("blue-green", {"bake_s": "10m", "gates": {"max_error_rate": None}}),
        ("canary", {"steps": "1,10,100", "interval_s": 30, "gates": {"min_requests": 500}}),
        ("ab", {"split": 0.2, "alpha": 0.01, "auto_promote": True}),
        ("shadow", {"sample": 1.0}),
    ],
)
def test_specs_round_trip_through_json(strategy: str, options: dict[str, Any]) -> None:
    spec = RolloutSpec.create(strategy, "fraud:2", **options)
    assert RolloutSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_a_state_with_history_round_trips_through_json() -> None:
    state = tick(begin(), HOLD, at(60)).state
    state = pause(state, at(75.5)).state
    ab = tick(begin("ab"), Analysis(Outcome.PASS, "p=0.01", {"p_value": 0.01}, carry={"looks": 3}), at(5)).state
    for original in (state, ab, abort(state, at(80)).state):
        restored = RolloutState.from_dict(json.loads(json.dumps(original.to_dict())))
        assert restored == original
        assert next_action(restored, at(90)) == next_action(original, at(90))


@pytest.mark.parametrize(
    ("make", "policy"),
    [
        (lambda: begin(), TrafficPolicy("fraud:1", candidate="fraud:2", weight=0.05)),
        (lambda: pause(tick(begin(), PASS, at(60)).state, at(61)).state, TrafficPolicy("fraud:1", "fraud:2", 0.25)),
        (lambda: tick(begin(), HOLD, at(60)).state, TrafficPolicy("fraud:1", candidate="fraud:2", weight=0.05)),
        (lambda: begin("blue-green"), TrafficPolicy("fraud:1", candidate="fraud:2", weight=1.0)),
        (lambda: begin("ab", split=0.4), TrafficPolicy("fraud:1", candidate="fraud:2", weight=0.4)),
        (lambda: begin("shadow", sample=0.3), TrafficPolicy("fraud:1", shadow="fraud:2", shadow_sample=0.3)),
        (lambda: begin("replace"), TrafficPolicy("fraud:2")),
        (lambda: abort(begin("ab"), at(1)).state, TrafficPolicy("fraud:1")),
        (lambda: tick(begin(), FAIL, at(1)).state, TrafficPolicy("fraud:1")),
    ],
    ids=["running", "paused", "held", "baking", "ab", "shadow", "completed", "aborted", "failed"],
)
def test_policy_for_each_state(make: Any, policy: TrafficPolicy) -> None:
    assert policy_for(make()) == policy


def test_routing_keys_stay_sticky_as_the_canary_advances() -> None:
    keys = [f"user-{i}" for i in range(3_000)]
    state = begin()
    on_candidate: set[str] = set()
    while state.status is RolloutStatus.RUNNING:
        now_on = {k for k in keys if route(policy_for(state), k).arm is Arm.CANDIDATE}
        assert on_candidate <= now_on  # a key that reached the candidate never flips back
        assert abs(len(now_on) / len(keys) - state.weight) < 0.03
        on_candidate = now_on
        state = tick(state, PASS, at(60 * (state.step_index + 1))).state
    assert all(route(policy_for(state), k).version == "fraud:2" for k in keys)


@pytest.mark.parametrize(
    ("make", "now", "expected"),
    [
        (lambda: tick(begin(interval_s="5m"), PASS, at(300)).state, at(410), "step 2 of 4 (25%) ends in 3m 10s; then"),
        (lambda: begin(steps="50,100"), at(0), "pass moves to 100% (completed), fail rolls back to 0%"),
        (lambda: begin("shadow"), at(0), "shadowing 20% of requests to fraud:2; promote to make it stable"),
        (lambda: begin("ab", auto_promote=True), at(0), "a winner is promoted automatically"),
        (lambda: pause(begin("ab"), at(0)).state, at(5), "paused at 50%"),
        (lambda: begin("replace"), at(5), "nothing: completed at 2024-05-01T12:00:00+00:00; fraud:2 is stable"),
        (lambda: abort(begin(), at(5)).state, at(9), "nothing: rolled back at 2024-05-01T12:00:05+00:00; fraud:1"),
    ],
)
def test_next_action_says_what_happens_next(make: Any, now: datetime, expected: str) -> None:
    assert expected in next_action(make(), now)
