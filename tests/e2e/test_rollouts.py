"""Whole rollout stories on a real server under concurrent load: canary, blue-green, shadow, A/B."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.rollouts.machine import RolloutStatus
from shipyard.store import feedback as feedback_repo
from shipyard.workspace import Workspace
from tests.serving_models import Doubler, FailsOnLiveTraffic
from tests.serving_support import running_server

SAMPLE = pd.DataFrame({"x": [0.101, 0.202, 0.303, 0.404]})


class FakeClock:
    """Rollout time under the test's control: steps and bakes pass without waiting."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


class Load:
    """Steady traffic from a few threads with distinct routing keys; remembers every answer."""

    def __init__(self, url: str, endpoint: str, threads: int = 3) -> None:
        self.url, self.endpoint = url, endpoint
        self.results: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=10) as client:
            deadline = time.monotonic() + 120
            while not self._stop.is_set() and time.monotonic() < deadline:
                value = round(rng.uniform(0.0, 1.0), 3)
                response = client.post(
                    f"/v1/endpoints/{self.endpoint}/predict",
                    json={"instances": [{"x": value}]},
                    headers={"X-Routing-Key": uuid.uuid4().hex},
                )
                self.results.append((response.status_code, response.headers.get("x-model-version", "")))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def failures(self) -> list[tuple[int, str]]:
        return [r for r in self.results if r[0] != 200]


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s}s")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stage(settings: Settings, workspace: Workspace, clock: FakeClock) -> Iterator[Callable[..., str]]:
    """Register svc:1 (healthy) and a candidate svc:2, serve endpoint 'svc', and yield the URL."""
    fast = settings.model_copy(update={"poll_interval_s": 0.2})
    workspace.rollouts.clock = clock
    workspace.registry.register(Doubler(), name="svc", sample_input=SAMPLE, trusted=True)
    workspace.endpoints.create("svc", model="svc:1")
    servers: list[object] = []

    def serve(candidate: object) -> str:
        workspace.registry.register(candidate, name="svc", sample_input=SAMPLE, trusted=True)
        context = running_server(fast, workspace)
        servers.append(context)
        return context.__enter__()

    yield serve
    for context in servers:
        context.__exit__(None, None, None)  # type: ignore[attr-defined]


def state_of(workspace: Workspace) -> RolloutStatus:
    return workspace.rollouts.current("svc").status


def test_canary_rolls_back_a_candidate_that_errors_on_20_percent_within_one_interval(
    stage: Callable[..., str], workspace: Workspace
) -> None:
    url = stage(Doubler(fail_one_in=5))
    with Load(url, "svc") as load:
        time.sleep(0.3)
        workspace.rollouts.start(
            "svc",
            to="svc:2",
            strategy="canary",
            steps="50,100",
            interval_s="10m",
            gates={"min_requests": 30, "max_error_rate": 0.05},
        )
        took = wait_for(lambda: state_of(workspace) is RolloutStatus.ROLLED_BACK)
        time.sleep(0.6)  # routes refresh: traffic is back on stable only
        after = len(load.results)
        time.sleep(0.5)
    assert took < 10.0  # well within one (10 minute) interval, in fake time no time passed at all
    tail = load.results[after:]
    assert tail and all(code == 200 and version == "svc:1" for code, version in tail)
    stable_failures = [r for r in load.failures() if r[1] == "svc:1"]
    assert stable_failures == []  # only callers routed to the candidate ever saw its errors
    events = [e.kind.value for e in workspace.rollouts.current("svc").events]
    assert events[0] == "started" and "rolled_back" in events


def test_canary_rolls_back_a_candidate_three_times_slower(stage: Callable[..., str], workspace: Workspace) -> None:
    # svc:2, the new stable
    workspace.registry.register(Doubler(delay_s=0.004), name="svc", sample_input=SAMPLE, trusted=True)
    workspace.endpoints.set_model("svc", model="svc:2")
    url = stage(Doubler(delay_s=0.012))  # svc:3, three times slower
    with Load(url, "svc"):
        wait_for(
            lambda: (
                httpx.post(f"{url}/v1/endpoints/svc/predict", json={"instances": [{"x": 0.5}]}).headers.get(
                    "x-model-version"
                )
                == "svc:2"
            )
        )
        workspace.rollouts.start(
            "svc", to="svc:3", strategy="canary", steps="50,100", interval_s="10m", gates={"min_requests": 30}
        )
        wait_for(lambda: state_of(workspace) is RolloutStatus.ROLLED_BACK, timeout_s=60)
    rolled = workspace.rollouts.current("svc").events[-1]
    assert "latency" in str(rolled.evidence).lower()


def test_healthy_canary_walks_every_step_to_completion_with_zero_failed_requests(
    stage: Callable[..., str], workspace: Workspace, clock: FakeClock
) -> None:
    url = stage(Doubler())
    with Load(url, "svc") as load:
        # On a shared test machine the p99 of a few dozen sub-millisecond requests is noise, so the latency
        # gate is off here; the three-times-slower test exercises it.
        workspace.rollouts.start(
            "svc",
            to="svc:2",
            strategy="canary",
            steps="25,50,100",
            interval_s="1m",
            gates={"min_requests": 30, "max_latency_ratio": None},
        )
        for _ in range(4):
            time.sleep(1.5)  # this step's traffic accumulates (and is flushed) in real time
            clock.advance(61)  # the step's interval passes in fake time
            time.sleep(0.6)
            if state_of(workspace) is RolloutStatus.COMPLETED:
                break
        wait_for(lambda: state_of(workspace) is RolloutStatus.COMPLETED)
        wait_for(lambda: load.results[-1][1] == "svc:2")
    assert load.failures() == []
    versions = Counter(v for _, v in load.results)
    assert versions["svc:1"] > 0 and versions["svc:2"] > 0
    assert workspace.endpoints.resolve(workspace.endpoints.get("svc")).version.ref == "svc:2"
    kinds = [e.kind.value for e in workspace.rollouts.current("svc").events]
    assert kinds[0] == "started" and kinds.count("step_passed") >= 1 and kinds[-1] == "completed"


def test_blue_green_switches_at_once_and_abort_switches_back_with_zero_failed_requests(
    stage: Callable[..., str], workspace: Workspace
) -> None:
    url = stage(Doubler())
    with Load(url, "svc") as load:
        workspace.rollouts.start("svc", to="svc:2", strategy="blue-green", bake_s="10m")
        wait_for(lambda: load.results and load.results[-1][1] == "svc:2")
        workspace.rollouts.abort("svc", reason="test")
        wait_for(lambda: load.results[-1][1] == "svc:1")
        time.sleep(0.3)
    assert load.failures() == []
    assert state_of(workspace) is RolloutStatus.ROLLED_BACK


def test_a_shadow_candidate_that_always_raises_changes_nothing_callers_see(
    stage: Callable[..., str], workspace: Workspace
) -> None:
    url = stage(FailsOnLiveTraffic())
    with Load(url, "svc") as load:
        workspace.rollouts.start("svc", to="svc:2", strategy="shadow", sample=1.0)

        def compared() -> int:
            shadow = workspace.rollouts.status("svc").shadow
            return shadow.requests if shadow is not None else 0

        wait_for(lambda: compared() > 50, timeout_s=90)  # the shadow process starts on first use, at low priority
    assert load.failures() == [] and {v for _, v in load.results} == {"svc:1"}
    view = workspace.rollouts.status("svc")
    assert view.shadow is not None and view.shadow.requests > 50
    assert view.shadow.errors >= 0.95 * view.shadow.requests  # a few live values equal the registration sample


def test_shadow_requests_dropped_while_the_shadow_process_stalls_are_shown_by_status_as_the_metric_counts_them(
    stage: Callable[..., str], workspace: Workspace
) -> None:
    url = stage(Doubler())
    plane = url.app.state.dataplane  # type: ignore[attr-defined]
    metric = 'shipyard_shadow_dropped_total{endpoint="svc",reason="shadow_queue_full"}'

    def dropped_metric() -> float:
        lines = httpx.get(f"{url}/metrics", timeout=10).text.splitlines()
        return next((float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(metric + " ")), 0.0)

    def shadow_figures() -> tuple[int, dict[str, int]]:
        shadow = workspace.rollouts.status("svc").shadow
        return (shadow.requests, dict(shadow.dropped)) if shadow is not None else (0, {})

    with Load(url, "svc") as load:
        workspace.rollouts.start("svc", to="svc:2", strategy="shadow", sample=1.0)
        wait_for(lambda: shadow_figures()[0] > 20, timeout_s=90)  # the shadow process starts on first use
        pid = plane.shadow.pid
        os.kill(pid, signal.SIGSTOP)  # a stalled shadow process: its queue fills, and the server drops
        try:
            wait_for(lambda: dropped_metric() > 0, timeout_s=60)
        finally:
            os.kill(pid, signal.SIGCONT)
    wait_for(lambda: shadow_figures()[1].get("shadow_queue_full", 0) == dropped_metric(), timeout_s=30)
    compared, dropped = shadow_figures()
    assert load.failures() == [] and compared > 20
    assert set(dropped) == {"shadow_queue_full"} and dropped["shadow_queue_full"] == dropped_metric() > 0
    report = httpx.get(f"{url}/v1/endpoints/svc/rollouts/current", timeout=10).json()["shadow_report"]
    assert report["dropped"] == dropped


def test_ab_with_recorded_rewards_promotes_a_significant_winner(
    stage: Callable[..., str], workspace: Workspace, clock: FakeClock
) -> None:
    stage(Doubler())
    workspace.rollouts.start("svc", to="svc:2", strategy="ab", split=0.5, auto_promote=True)
    rng = random.Random(3)
    items = []
    for i in range(4000):
        arm = "stable" if i % 2 else "candidate"
        rate = 0.10 if arm == "stable" else 0.16
        items.append(feedback_repo.FeedbackItem("svc", f"r{i}", clock(), arm=arm, reward=float(rng.random() < rate)))
    with workspace.db.write() as conn:
        feedback_repo.record(conn, items, clock())
    wait_for(lambda: state_of(workspace) is RolloutStatus.COMPLETED)
    promoted = [e for e in workspace.rollouts.current("svc").events if e.kind.value == "promoted"]
    assert promoted and "svc:2 won the A/B test" in promoted[0].message
    assert promoted[0].evidence["winner"] == "candidate" and promoted[0].evidence["significant"] is True
    assert workspace.endpoints.resolve(workspace.endpoints.get("svc")).version.ref == "svc:2"


def test_a_killed_server_resumes_the_rollout_from_the_stored_state(
    settings: Settings, workspace: Workspace, clock: FakeClock
) -> None:
    fast = settings.model_copy(update={"poll_interval_s": 0.2})
    workspace.rollouts.clock = clock
    workspace.registry.register(Doubler(), name="svc", sample_input=SAMPLE, trusted=True)
    workspace.endpoints.create("svc", model="svc:1")
    workspace.registry.register(Doubler(), name="svc", sample_input=SAMPLE, trusted=True)
    workspace.rollouts.start(
        "svc",
        to="svc:2",
        strategy="canary",
        steps="25,50,100",
        interval_s="1m",
        gates={"min_requests": 20, "max_latency_ratio": None},
    )
    with running_server(fast, workspace) as url, Load(url, "svc"):
        time.sleep(1.5)
        clock.advance(61)
        wait_for(lambda: workspace.rollouts.current("svc").step_index == 1)
    # The first server is gone (as after kill -9, nothing was handed over); a new one picks the rollout up.
    with running_server(fast, workspace) as url, Load(url, "svc") as load:
        wait_for(lambda: any(v == "svc:2" for _, v in load.results))
        time.sleep(1.5)
        clock.advance(61)
        wait_for(lambda: state_of(workspace) is RolloutStatus.COMPLETED)
    assert load.failures() == []


def test_only_the_lease_holder_drives_rollouts(workspace: Workspace, clock: FakeClock) -> None:
    from shipyard.serving.controller import Controller

    workspace.rollouts.clock = clock
    workspace.registry.register(Doubler(), name="svc", sample_input=SAMPLE, trusted=True)
    workspace.endpoints.create("svc", model="svc:1")
    workspace.registry.register(Doubler(), name="svc", sample_input=SAMPLE, trusted=True)
    workspace.rollouts.start("svc", to="svc:2", strategy="blue-green", bake_s="1m", gates={"min_requests": 1})
    first, second = Controller(workspace.rollouts, "a", lease_s=10), Controller(workspace.rollouts, "b", lease_s=10)
    assert workspace.rollouts.hold_controller_lease("a", ttl_s=120)
    clock.advance(61)
    assert second.tick_once() == 0 and state_of(workspace) is RolloutStatus.RUNNING
    first.tick_once()  # holds the lease; with no evidence the bake end is held, not passed
    assert workspace.rollouts.current("svc").held_at is not None
    clock.advance(11)  # "a" stopped renewing: its lease expired, so "b" takes over
    assert workspace.rollouts.hold_controller_lease("b", ttl_s=10)
    assert not workspace.rollouts.hold_controller_lease("a", ttl_s=10)


def test_replace_and_a_manual_promotion_under_load_fail_no_request(
    stage: Callable[..., str], workspace: Workspace
) -> None:
    url = stage(Doubler())
    workspace.registry.register(Doubler(), name="svc", sample_input=SAMPLE, trusted=True)  # svc:3
    with Load(url, "svc") as load:
        time.sleep(0.3)
        workspace.rollouts.start("svc", to="svc:2", strategy="replace")
        assert state_of(workspace) is RolloutStatus.COMPLETED
        wait_for(lambda: load.results[-1][1] == "svc:2")
        workspace.rollouts.start("svc", to="svc:3", strategy="canary", steps="50,100", interval_s="1h")
        wait_for(lambda: any(v == "svc:3" for _, v in load.results[-50:]))
        workspace.rollouts.promote("svc")  # 50% -> 100%: the last step, so the canary completes
        wait_for(lambda: state_of(workspace) is RolloutStatus.COMPLETED)
        wait_for(lambda: load.results[-1][1] == "svc:3")
        time.sleep(0.3)
    assert load.failures() == []
    body = httpx.post(f"{url}/v1/endpoints/svc/predict", json={"instances": [{"x": 0.5}]}).json()
    assert body["version"] == 3 and body["arm"] == "stable"
