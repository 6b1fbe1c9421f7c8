"""Rollouts over HTTP on a real server on 127.0.0.1, on SQLite and PostgreSQL: start, status, manual moves,
the documented errors, a refused broken candidate, and webhooks to a real receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_models import AlwaysRaises, RaisesOnNegative
from tests.serving_support import running_server
from tests.webhook_receiver import webhook_receiver

ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"poll_interval_s": 0.2})


def _register(workspace: Workspace) -> None:
    """iris:1 and iris:2 behind endpoint ``iris``; a working doubler:1 and a broken doubler:2 behind ``doubler``."""
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    sample = pd.DataFrame({"x": [1.0]})
    stable = workspace.registry.register(RaisesOnNegative(), name="doubler", sample_input=sample, trusted=True)
    # Registered with a signature and no sample, so nothing calls the broken model before the rollout does.
    workspace.registry.register(AlwaysRaises(), name="doubler", signature=stable.signature, trusted=True)
    workspace.endpoints.create("doubler", model="doubler:1")


@pytest.fixture
def served(fast_settings: Settings, workspace: Workspace) -> Iterator[str]:
    _register(workspace)
    with running_server(fast_settings, workspace) as url:
        yield url


def rollouts(url: str, endpoint: str, action: str = "", body: Any = None) -> httpx.Response:
    base = f"{url}/v1/endpoints/{endpoint}/rollouts"
    if action == "status":
        return httpx.get(f"{base}/current", timeout=30)
    target = f"{base}/current/{action}" if action else base
    # A bodyless move needs the client header: a browser page on another site cannot send it (cross-site guard).
    return httpx.post(target, json=body, headers={"X-Shipyard-Client": "1"}, timeout=30)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
    return body["error"]


def served_version(url: str, endpoint: str, expected: str, timeout_s: float = 10.0) -> None:
    """Wait until the endpoint answers with ``expected`` (servers pick up changes within the poll interval)."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        body = {"instances": [ROW]} if endpoint == "iris" else {"instances": [{"x": 1.0}]}
        response = httpx.post(f"{url}/v1/endpoints/{endpoint}/predict", json=body, timeout=10)
        assert response.status_code == 200, response.text
        seen = response.headers["x-model-version"]
        if seen == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{endpoint} serves {seen}, expected {expected}")


def test_a_canary_is_started_watched_and_steered_over_http(served: str) -> None:
    url = served
    started = rollouts(
        url,
        "iris",
        body={
            "to": "iris:2",
            "strategy": "canary",
            "steps": "5,25,50,100",
            "interval_s": "5m",
            "gates": {"min_requests": 50, "max_latency_ratio": None},
        },
    )
    assert started.status_code == 201, started.text
    state = started.json()
    rollout_id = state["id"]
    assert (state["status"], state["weight"], state["stable"]) == ("running", 0.05, "iris:1")
    assert state["spec"]["gates"]["min_requests"] == 50 and state["spec"]["gates"]["max_latency_ratio"] is None
    assert state["spec"]["gates"]["max_error_rate"] == 0.05  # a gate not named keeps its default

    second = rollouts(url, "iris", body={"to": "iris:2", "strategy": "replace"})
    assert second.status_code == 409
    assert rollout_id in error_of(second)["message"]

    status = rollouts(url, "iris", "status")
    assert status.status_code == 200
    view = status.json()
    assert view["id"] == rollout_id and "step 1 of 4" in view["next_action"]
    assert [e["kind"] for e in view["events"]] == ["started"] and "evidence" in view

    assert rollouts(url, "iris", "pause").json()["status"] == "paused"
    again = rollouts(url, "iris", "pause")
    assert again.status_code == 409 and "already paused" in error_of(again)["message"]
    assert rollouts(url, "iris", "resume").json()["status"] == "running"
    promoted = rollouts(url, "iris", "promote").json()
    assert (promoted["status"], promoted["weight"]) == ("running", 0.25)
    aborted = rollouts(url, "iris", "abort", body={"reason": "checking the abort path"})
    assert aborted.status_code == 200
    assert (aborted.json()["status"], aborted.json()["weight"]) == ("rolled_back", 0.0)
    assert "checking the abort path" in aborted.json()["events"][-2]["message"]
    finished = rollouts(url, "iris", "promote")
    assert finished.status_code == 409 and rollout_id in error_of(finished)["message"]
    served_version(url, "iris", "iris:1")

    replaced = rollouts(url, "iris", body={"to": "iris:2", "strategy": "replace"})
    assert replaced.status_code == 201 and replaced.json()["status"] == "completed"
    assert httpx.get(f"{url}/v1/endpoints/iris", timeout=10).json()["version"] == "iris:2"
    served_version(url, "iris", "iris:2")


def test_status_without_a_rollout_is_404_and_bad_options_are_422(served: str) -> None:
    url = served
    missing = rollouts(url, "iris", "status")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "rollout_not_found"
    assert rollouts(url, "nope", "status").status_code == 404
    assert rollouts(url, "nope", body={"to": "iris:2", "strategy": "replace"}).status_code == 404
    assert rollouts(url, "iris", "abort").status_code == 404

    bad: list[tuple[dict[str, Any], str]] = [
        ({"steps": "5,3,100"}, "3% follows 5%"),
        ({"steps": "5,50"}, "must end at 100%"),
        ({"steps": [0.5, 1.5]}, "150%"),
        ({"strategy": "nope"}, "'nope'"),
        ({"strategy": "ab", "split": 1.5}, "1.5"),
        ({"interval_s": "0s"}, "interval"),
        ({"interval_s": "soon"}, "'soon'"),
        ({"split": 0.5}, "option 'split' applies to ab"),
        ({"gates": {"max_error_rate": 2}}, "max_error_rate"),
        ({"gates": {"max_eror_rate": 0.1}}, "max_eror_rate"),
        ({"unknown": 1}, "unknown"),
        ({"to": "iris:9"}, "no version 9"),
    ]
    for change, fragment in bad:
        body = {"to": "iris:2", "strategy": "canary", **change}
        response = rollouts(url, "iris", body=body)
        assert response.status_code in (404, 422), (change, response.text)
        assert fragment in error_of(response)["message"], (change, response.text)
    assert rollouts(url, "iris", "status").status_code == 404  # nothing was started


def test_a_candidate_failing_its_smoke_test_is_refused_and_the_stable_keeps_serving(served: str) -> None:
    url = served
    served_version(url, "doubler", "doubler:1")
    refused = rollouts(url, "doubler", body={"to": "doubler:2", "strategy": "blue-green", "bake_s": 60})
    assert refused.status_code == 422
    error = error_of(refused)
    assert error["code"] == "model_load_failed"
    assert "doubler:2" in error["message"] and "this model is broken" in error["message"]
    assert rollouts(url, "doubler", "status").status_code == 404
    served_version(url, "doubler", "doubler:1")


def test_rollout_transitions_are_posted_to_configured_webhooks(fast_settings: Settings, workspace: Workspace) -> None:
    _register(workspace)
    with webhook_receiver() as receiver:
        hooked_settings = fast_settings.model_copy(update={"webhook_urls": (receiver.url,)})
        hooked = Workspace(hooked_settings)
        try:
            with running_server(hooked_settings, hooked) as url:
                started = rollouts(url, "iris", body={"to": "iris:2", "strategy": "blue-green", "bake_s": "10m"})
                assert started.status_code == 201, started.text
                assert rollouts(url, "iris", "promote").status_code == 200
                events = receiver.wait_for(3)
        finally:
            hooked.close()
    assert [e["event"] for e in events] == ["started", "promoted", "completed"]
    assert {e["rollout_id"] for e in events} == {started.json()["id"]}
    assert events[-1]["status"] == "completed" and events[-1]["candidate"] == "iris:2"
