"""A model that raises is counted against its own version and arm: in /metrics, live windows and the report.

Only requests refused before routing (malformed body, row limit, no loaded model) belong to no version.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import httpx
import pandas as pd
from rich.console import Console

from shipyard.config import Settings
from shipyard.monitoring.report import MonitoringReport
from shipyard.reporting.terminal import render_terminal
from shipyard.workspace import Workspace
from tests.serving_models import Doubler, RaisesOnNegative
from tests.serving_support import running_server

SAMPLE = pd.DataFrame({"x": [0.5, 1.0, 2.0]})


def predict(url: str, endpoint: str, x: float, key: str = "k") -> httpx.Response:
    return httpx.post(
        f"{url}/v1/endpoints/{endpoint}/predict",
        json={"instances": [{"x": x}]},
        headers={"X-Routing-Key": key},
        timeout=10,
    )


def metric_lines(url: str, name: str, endpoint: str) -> dict[str, float]:
    """Every sample of ``name`` for ``endpoint``, keyed by its label text."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") and f'endpoint="{endpoint}"' in line:
            labels, value = line.rsplit(" ", 1)
            out[labels[len(name) :]] = float(value)
    return out


def terminal_text(report: dict) -> str:
    buffer = io.StringIO()
    render_terminal(MonitoringReport.from_dict(report), Console(file=buffer, width=200, color_system=None))
    return buffer.getvalue()


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s}s")


def test_a_model_that_raises_is_counted_against_its_version_not_as_refused_before_routing(
    settings: Settings, workspace: Workspace
) -> None:
    workspace.registry.register(RaisesOnNegative(), name="fragile", sample_input=SAMPLE, trusted=True)
    workspace.endpoints.create("fragile", model="fragile:1")
    with running_server(settings.model_copy(update={"poll_interval_s": 0.2}), workspace) as url:
        for x in (1.0, 2.0, 3.0):
            assert predict(url, "fragile", x).status_code == 200
        for x in (-1.0, -2.0):
            assert predict(url, "fragile", x).status_code == 500
        v2 = httpx.post(
            f"{url}/v2/models/fragile/infer",
            json={"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [-5.0]}]},
            timeout=10,
        )
        assert v2.status_code == 500
        malformed = httpx.post(f"{url}/v1/endpoints/fragile/predict", content=b"{not json", timeout=10)
        assert malformed.status_code == 400

        requests = metric_lines(url, "shipyard_requests_total", "fragile")
        assert requests['{endpoint="fragile",status="500",version="fragile:1"}'] == 3.0
        assert requests['{endpoint="fragile",status="200",version="fragile:1"}'] == 3.0
        assert requests['{endpoint="fragile",status="400",version="none"}'] == 1.0
        assert not any('status="500"' in labels and 'version="none"' in labels for labels in requests)

        report = httpx.get(f"{url}/v1/endpoints/fragile/monitoring", params={"window": "all"}, timeout=30).json()
    (version,) = report["versions"]
    assert version["version"] == "fragile:1" and version["arms"] == ["stable"]
    operational = version["operational"]
    assert operational["requests"] == 6 and operational["errors"] == {"500": 3}
    assert operational["error_rate"] == 0.5
    assert report["unrouted"] == {"requests": 1, "errors": {"400": 1}, "dropped": 0}
    text = terminal_text(report)
    refused = [line for line in text.splitlines() if "refused before reaching a version" in line]
    assert len(refused) == 1 and "(400: 1)" in refused[0] and "500" not in refused[0]


def test_a_canary_candidate_that_raises_has_its_errors_under_its_version_and_arm(
    settings: Settings, workspace: Workspace
) -> None:
    workspace.registry.register(Doubler(), name="svc", sample_input=SAMPLE, trusted=True)  # stable: answers any number
    # candidate: raises on x < 0
    workspace.registry.register(RaisesOnNegative(), name="svc", sample_input=SAMPLE, trusted=True)
    workspace.endpoints.create("svc", model="svc:1")
    with running_server(settings.model_copy(update={"poll_interval_s": 0.2}), workspace) as url:
        workspace.rollouts.start(
            "svc", to="svc:2", strategy="canary", steps="50,100", interval_s="1h", gates={"min_requests": 1_000_000}
        )
        dataplane = url.app.state.dataplane
        wait_for(lambda: dataplane.routes["svc"].rollout is not None)
        answers = [predict(url, "svc", -1.0, key=f"user-{i}") for i in range(40)]

        by_status = {code: sum(1 for r in answers if r.status_code == code) for code in (200, 500)}
        assert by_status[200] > 0 and by_status[500] > 0 and sum(by_status.values()) == 40
        assert {r.headers["x-model-version"] for r in answers if r.status_code == 200} == {"svc:1"}
        requests = metric_lines(url, "shipyard_requests_total", "svc")
        assert requests['{endpoint="svc",status="500",version="svc:2"}'] == by_status[500]
        assert requests['{endpoint="svc",status="200",version="svc:1"}'] == by_status[200]
        assert not any('version="none"' in labels for labels in requests)

        report = httpx.get(f"{url}/v1/endpoints/svc/monitoring", params={"window": "all"}, timeout=30).json()
    versions = {v["version"]: v for v in report["versions"]}
    candidate, stable = versions["svc:2"], versions["svc:1"]
    assert candidate["arms"] == ["candidate"] and candidate["operational"]["errors"] == {"500": by_status[500]}
    assert candidate["operational"]["error_rate"] == 1.0
    assert stable["arms"] == ["stable"] and stable["operational"]["errors"] == {}
    assert report["unrouted"]["requests"] == 0
    assert "refused before reaching a version" not in terminal_text(report)
    evidence, _ = workspace.rollouts.step_evidence(workspace.rollouts.current("svc"))
    assert evidence["candidate"].errors == by_status[500]  # the rollout's own evidence agrees
