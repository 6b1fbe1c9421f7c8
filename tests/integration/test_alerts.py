"""Alert rules on a real server: drifted traffic makes a drift rule fire (its event reaches a webhook
receiver once), clean traffic resolves it, a silence keeps the state but sends nothing, a rollback action
rolls back an active canary, a --confirm action waits for an ack, and bad rules are refused at declaration.

Windows are 2 s long so that a rule held over 2 windows fires within seconds; every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from shipyard.store import outbox
from shipyard.workspace import Workspace
from tests.integration.test_cli import assert_one_line_error, run
from tests.integration.test_monitoring import _live, _training
from tests.serving_support import running_server
from tests.webhook_receiver import webhook_receiver

WINDOW_S = 2


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """The workspace (and so its alert service) reads windows of the size the server writes them."""
    return Settings(
        home=tmp_path,
        database_url=store_url,
        artifact_uri=str(tmp_path / "artifacts"),
        poll_interval_s=0.2,
        log_flush_s=0.2,
        monitor_flush_s=0.3,
        monitor_window_s=WINDOW_S,
    )


def quick(settings: Settings, *urls: str) -> Settings:
    return settings.model_copy(update={"webhook_urls": urls})


def serve_model(workspace: Workspace, *endpoints: str, versions: int = 1) -> None:
    frame, target, model = _training()
    for _ in range(versions):
        workspace.registry.register(
            model, name="m", sample_input=frame[:50], training_data=frame, training_target=target
        )
    for name in endpoints:
        workspace.endpoints.create(name, model="m:1")


@contextmanager
def traffic(url: str, endpoints: tuple[str, ...], shift: Callable[[], float]) -> Iterator[None]:
    """Rows to every endpoint, five requests a second, shifted by ``shift()`` (changeable while it runs)."""
    stop = threading.Event()

    def send() -> None:
        seed = 0
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                seed += 1
                rows = _live(80, seed, shift()).to_dict(orient="records")
                for endpoint in endpoints:
                    client.post(f"{url}/v1/endpoints/{endpoint}/predict", json={"instances": rows})
                stop.wait(0.2)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def eventually(check: Callable[[], Any], timeout_s: float = 40.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout_s}s")


def alert_events(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in received if e["event"] in ("alert.firing", "alert.resolved")]


def state_of(workspace: Workspace, rule: str) -> str:
    states = workspace.alerts.show(rule)["states"]
    return str(states[0]["state"]) if states else "inactive"


DRIFT_RULE = {
    "name": "drift",
    "endpoint": "scored",
    "metric": "drift.share",
    "op": ">",
    "threshold": 0.05,
    "for": 2,
    "severity": "critical",
    "labels": {"team": "risk"},
}


def test_drifted_traffic_fires_once_and_clean_traffic_resolves(settings: Settings, workspace: Workspace) -> None:
    serve_model(workspace, "scored")
    workspace.alerts.create(DRIFT_RULE)
    shift = {"value": 3.0}
    with webhook_receiver() as hook, running_server(quick(settings, hook.url), workspace) as url:
        with traffic(url, ("scored",), lambda: shift["value"]):
            eventually(lambda: alert_events(hook.events()), what="an alert.firing event")
            time.sleep(3 * WINDOW_S)  # more drifted windows: still firing, nothing sent again
            assert [e["event"] for e in alert_events(hook.events())] == ["alert.firing"]
            shift["value"] = 0.0
            eventually(lambda: len(alert_events(hook.events())) == 2, what="an alert.resolved event")
        received = hook.events()
    firing, resolved = alert_events(received)
    # SHIFTED moves 2 of 20 features: a share of 0.1 is over the 0.05 threshold, clean traffic's is 0
    assert firing["rule"] == "drift" and firing["endpoint"] == "scored" and firing["version"] == "m:1"
    assert firing["value"] > 0.05 and firing["severity"] == "critical" and firing["labels"] == {"team": "risk"}
    assert resolved["event"] == "alert.resolved" and resolved["value"] <= 0.05 and resolved["ended_at"] is not None
    groups = [e for e in received if e["event"] == "alert.group"]
    assert next(g["firing"] for g in groups) == ["drift"]  # one grouped notification per endpoint and tick
    transitions = [(h.from_state, h.to_state) for h in reversed(workspace.alerts.history(rule="drift"))]
    assert transitions[-3:] == [("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")]


def test_a_silence_keeps_the_state_and_sends_nothing(settings: Settings, workspace: Workspace) -> None:
    serve_model(workspace, "scored")
    workspace.alerts.create({**DRIFT_RULE, "for": 1})
    workspace.alerts.silence("drift", duration="1h", reason="known upstream change")
    with (
        webhook_receiver() as hook,
        running_server(quick(settings, hook.url), workspace) as url,
        traffic(url, ("scored",), lambda: 3.0),
    ):
        eventually(lambda: state_of(workspace, "drift") == "firing", what="the silenced rule firing")
    with workspace.db.read() as conn:
        kinds = [e.event for e in outbox.after(conn, 0, limit=1000)]
    assert "alert.firing" not in kinds and alert_events(hook.events()) == []
    assert workspace.alerts.show("drift")["silenced"] is True
    (audit,) = [e for e in workspace.audit.list() if e.action == "alert.silence"]
    assert (
        audit.target == "alert:drift" and audit.after is not None and audit.after["reason"] == "known upstream change"
    )


def test_rollback_acts_at_once_and_a_confirmed_pause_waits_for_an_ack(settings: Settings, workspace: Workspace) -> None:
    serve_model(workspace, "a", "b", versions=2)
    for endpoint in ("a", "b"):
        workspace.rollouts.start(endpoint, to="m:2", strategy="canary", steps="50,100", interval_s=3600)
    workspace.alerts.create({**DRIFT_RULE, "name": "back", "endpoint": "a", "for": 1, "action": "rollback"})
    workspace.alerts.create(
        {**DRIFT_RULE, "name": "hold", "endpoint": "b", "for": 1, "action": "pause", "confirm": True}
    )
    with running_server(quick(settings), workspace) as url, traffic(url, ("a", "b"), lambda: 3.0):
        eventually(lambda: workspace.rollouts.current("a").status.value == "rolled_back", what="the rollback")
        eventually(lambda: state_of(workspace, "hold") == "firing", what="the confirmed rule firing")
        time.sleep(2 * WINDOW_S)
        assert workspace.rollouts.current("b").status.value == "running"  # waits for a person
        assert workspace.alerts.show("hold")["states"][0]["action_state"] == "waiting"
        (result,) = workspace.alerts.ack("hold")
    assert result.ok and workspace.rollouts.current("b").status.value == "paused"
    assert workspace.alerts.show("hold")["states"][0]["action_state"] == "done"
    events = workspace.audit.list()
    (rollback,) = [e for e in events if e.action == "alert.action" and e.target == "alert:back"]
    assert rollback.actor == "system:controller" and rollback.after is not None
    assert rollback.after["action"] == "rollback" and rollback.after["cause"]["alert"] == "back"
    assert [e.action for e in events if e.target == "alert:hold"].count("alert.ack") == 1


def test_bad_rules_are_refused_at_declaration(settings: Settings, workspace: Workspace) -> None:
    serve_model(workspace, "scored")
    with running_server(quick(settings), workspace) as url:
        cases = [
            ({"metric": "drift.sharee"}, "unknown metric 'drift.sharee'; known metrics: drift.drifted"),
            ({"endpoint": "nope"}, "unknown endpoint 'nope'; endpoints: scored"),
            ({"threshold": "high"}, "threshold must be a number"),
            ({"for": "1s"}, "shorter than one monitoring window (2s)"),
        ]
        for change, message in cases:
            response = httpx.post(f"{url}/v1/alerts", json={**DRIFT_RULE, **change}, timeout=10)
            assert response.status_code == 422 and message in response.text, response.text
        assert httpx.get(f"{url}/v1/alerts", timeout=10).json() == {"rules": []}
    env = {"SHIPYARD_DATABASE_URL": settings.database_url, "SHIPYARD_ARTIFACT_URI": settings.artifact_uri}
    args = ["alerts", "create", "x", "--endpoint", "scored", "--metric", "accuracy", "--op", ">", "--threshold", "1"]
    assert_one_line_error(run(args, settings.home, ok=False, extra_env=env), "unknown metric 'accuracy'")
    ok = run([*args[:6], "performance.accuracy", "--op", "<", "--threshold", "0.8"], settings.home, extra_env=env)
    assert "alert x: scored performance.accuracy < 0.8" in ok.stdout
    listed = run(["alerts", "list", "--json"], settings.home, extra_env=env)
    assert '"name": "x"' in listed.stdout
