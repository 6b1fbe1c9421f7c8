"""/readyz tells a failed swap apart from health: the old version serves, the endpoint is reported degraded."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.config import Settings
from shipyard.serving.refresher import RETRY_MAX_S, retry_delay_s
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import running_server

IRIS_ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}
ABSOLUTE_PATH = re.compile(r"(?<![\w:/])/(?:[\w.@%+~=-]+/)+[\w.@%+~=-]+")


def other_iris() -> LogisticRegression:
    """A second iris model with its own artifact (identical models share one content-addressed file)."""
    x, y, _ = iris()
    return LogisticRegression(max_iter=500, C=0.5).fit(x, y)


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s}s")


def metric(url: str, sample: str) -> float:
    """One sample's value from /metrics, 0 when it is not there yet."""
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def tamper(workspace: Workspace, sha256: str) -> Path:
    path = Path(workspace.artifacts.location(sha256))
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    return path


def test_the_pause_between_retries_doubles_up_to_a_cap() -> None:
    delays = [retry_delay_s(n) for n in range(1, 12)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays == sorted(delays) and delays[-1] == RETRY_MAX_S
    assert retry_delay_s(10_000) == RETRY_MAX_S


def test_a_tampered_version_leaves_the_old_one_serving_and_readyz_says_degraded_with_backoff(
    settings: Settings, workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    tampered = workspace.registry.register(other_iris(), name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    path = tamper(workspace, tampered.sha256)
    failures = 'shipyard_model_load_failures_total{version="iris:2"}'
    caplog.set_level(logging.ERROR, logger="shipyard.serving")
    with running_server(settings.model_copy(update={"poll_interval_s": 0.1}), workspace) as url:
        refresher = url.app.state.refresher
        workspace.endpoints.set_model("iris", model="iris:2")
        wait_for(lambda: metric(url, failures) >= 1)  # the load was attempted, and failed
        attempts_before, passes_before = metric(url, failures), refresher.passes
        wait_for(lambda: refresher.passes >= passes_before + 25)
        attempts, passes = metric(url, failures) - attempts_before, refresher.passes - passes_before

        ready = httpx.get(f"{url}/readyz", timeout=10)
        served = httpx.post(f"{url}/v1/endpoints/iris/predict", json={"instances": [IRIS_ROW]}, timeout=10)
        degraded_gauge = metric(url, 'shipyard_endpoint_degraded{endpoint="iris"}')
        total_passes = refresher.passes
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cannot serve iris:2")]

    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["endpoints"] == {"iris": "iris:1"} and body["not_ready"] == {}
    degraded = body["degraded"]["iris"]
    assert degraded["serving"] == "iris:1" and degraded["wanted"] == "iris:2"
    assert "tampered" in degraded["reason"] and tampered.sha256 in degraded["reason"]
    assert str(path) not in ready.text and str(settings.home) not in ready.text
    assert not ABSOLUTE_PATH.search(ready.text), ready.text
    assert degraded_gauge == 1.0
    assert served.status_code == 200 and served.json()["version"] == 1
    assert attempts < passes / 3, (attempts, passes)  # retried with backoff, not on every pass
    # One log line per attempt (numbered 1, 2, 3, ...), none for the passes in between.
    assert [int(re.findall(r"attempt (\d+)", m)[0]) for m in logged] == list(range(1, len(logged) + 1))
    assert len(logged) < total_passes / 3


def test_an_endpoint_with_no_loadable_version_is_503_without_server_paths_and_recovers_when_repointed(
    settings: Settings, workspace: Workspace
) -> None:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    tampered = workspace.registry.register(other_iris(), name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:2")
    path = tamper(workspace, tampered.sha256)
    with running_server(settings.model_copy(update={"poll_interval_s": 0.1}), workspace, ready=False) as url:
        wait_for(lambda: "iris" in httpx.get(f"{url}/readyz", timeout=10).json().get("not_ready", {}))
        ready = httpx.get(f"{url}/readyz", timeout=10)
        refused = httpx.post(f"{url}/v1/endpoints/iris/predict", json={"instances": [IRIS_ROW]}, timeout=10)
        v2 = httpx.post(
            f"{url}/v2/models/iris/infer",
            json={"inputs": [{"name": n, "datatype": "FP64", "shape": [1], "data": [v]} for n, v in IRIS_ROW.items()]},
            timeout=10,
        )
        assert metric(url, 'shipyard_endpoint_degraded{endpoint="iris"}') == 1.0

        workspace.endpoints.set_model("iris", model="iris:1")  # a new wanted version is tried at once
        wait_for(lambda: httpx.get(f"{url}/readyz", timeout=10).status_code == 200, timeout_s=10)
        recovered = httpx.get(f"{url}/readyz", timeout=10).json()
        assert metric(url, 'shipyard_endpoint_degraded{endpoint="iris"}') == 0.0

    assert ready.status_code == 503 and "tampered" in ready.json()["not_ready"]["iris"]
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "not_ready"
    assert v2.status_code == 503 and tampered.sha256 in v2.json()["error"]
    for response in (ready, refused, v2):
        assert str(path) not in response.text and str(settings.home) not in response.text
        assert not ABSOLUTE_PATH.search(response.text), response.text
    assert recovered["endpoints"] == {"iris": "iris:1"} and recovered["degraded"] == {}
