"""Request tracing on a real server: from a request id to the version, artifact, data, code, rows, feedback and
rollout behind it, over HTTP and the ``shipyard trace`` command (local store and remote)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.config import Settings
from shipyard.core.identity import Role
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import ServerUrl, running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
ROWS = [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}, {"f0": 6.7, "f1": 3.0, "f2": 5.2, "f3": 2.3}]
REQUEST_ID = "trace-me-0001"


@pytest.fixture
def traced(settings: Settings, workspace: Workspace) -> Iterator[tuple[ServerUrl, Workspace, dict[str, Any]]]:
    """iris:1 serving with a canary to iris:2 in progress, one request served and labelled."""
    x, y, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20], training_data=x, training_target=y)
    other = LogisticRegression(max_iter=500, C=0.05).fit(x, y)
    workspace.registry.register(other, name="iris", sample_input=x[:20], training_data=x, training_target=y)
    workspace.endpoints.create("iris", model="iris:1")
    workspace.rollouts.start("iris", to="iris:2", strategy="canary", steps="50,100", interval_s="1h")
    fast = settings.model_copy(update={"poll_interval_s": 0.2, "log_flush_s": 0.05, "monitor_flush_s": 0.1})
    with running_server(fast, workspace) as url:
        served = httpx.post(
            f"{url}/v1/endpoints/iris/predict", json={"instances": ROWS}, headers={"X-Request-ID": REQUEST_ID}
        )
        assert served.status_code == 200, served.text
        feedback = httpx.post(
            f"{url}/v1/endpoints/iris/feedback", json={"request_id": REQUEST_ID, "row": 1, "label": 2}
        )
        assert feedback.status_code == 200, feedback.text
        yield url, workspace, served.json()


def cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "SHIPYARD_HOME": str(settings.home),
        "SHIPYARD_DATABASE_URL": settings.database_url,
        "SHIPYARD_ARTIFACT_URI": settings.artifact_uri,
        "COLUMNS": "200",
        **env,
    }
    return subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=environment, timeout=120)


def test_a_trace_names_the_version_artifact_data_code_rows_feedback_and_rollout_then(
    traced: tuple[ServerUrl, Workspace, dict[str, Any]],
) -> None:
    url, workspace, served = traced
    response = httpx.get(f"{url}/v1/requests/{REQUEST_ID}", params={"endpoint": "iris"})
    assert response.status_code == 200, response.text
    trace = response.json()
    version = workspace.registry.get(f"iris:{served['version']}")
    assert trace["request_id"] == REQUEST_ID and trace["endpoint"] == "iris"
    assert trace["version"] == version.ref  # the version that answered, not the endpoint's configured one
    assert trace["arm"] == ("candidate" if version.version == 2 else "stable")
    assert trace["sha256"] == version.sha256 and len(trace["sha256"]) == 64
    assert version.training_data_hash is not None and trace["training_data_hash"] == version.training_data_hash
    assert trace["code"] == version.code.to_dict()
    assert trace["latency_ms"] > 0
    assert [r["row"] for r in trace["rows"]] == [0, 1]
    assert [r["inputs"] for r in trace["rows"]] == ROWS
    assert [r["prediction"] for r in trace["rows"]] == [str(p) for p in served["predictions"]]
    for row, probabilities in zip(trace["rows"], served["probabilities"], strict=True):
        assert row["probabilities"] == pytest.approx(probabilities)
    assert [(f["row"], f["label"], f["corrections"]) for f in trace["feedback"]] == [(1, 2, 0)]
    rollout = trace["rollout"]
    assert rollout["strategy"] == "canary" and rollout["stable"] == "iris:1" and rollout["candidate"] == "iris:2"
    assert rollout["status"] == "running" and rollout["weight"] == pytest.approx(0.5)
    # Without the endpoint every endpoint's log is searched: the same trace.
    assert httpx.get(f"{url}/v1/requests/{REQUEST_ID}").json() == trace


def test_the_rollout_state_is_the_one_at_the_moment_of_the_request(
    traced: tuple[ServerUrl, Workspace, dict[str, Any]],
) -> None:
    url, workspace, _ = traced
    workspace.rollouts.abort("iris", reason="test")
    rollout = httpx.get(f"{url}/v1/requests/{REQUEST_ID}").json()["rollout"]
    assert rollout["status"] == "running" and rollout["status_now"] == "rolled_back"
    # A request served after the rollout ended has none.
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/v1/endpoints/iris/rollouts/current").json()["status"] != "rolled_back":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    later = httpx.post(
        f"{url}/v1/endpoints/iris/predict", json={"instances": ROWS[:1]}, headers={"X-Request-ID": "after"}
    )
    assert later.status_code == 200
    assert httpx.get(f"{url}/v1/requests/after", params={"endpoint": "iris"}).json()["rollout"] is None


def test_an_unknown_or_malformed_request_id_is_a_404_or_422_naming_why(
    traced: tuple[ServerUrl, Workspace, dict[str, Any]],
) -> None:
    url, _, _ = traced
    unknown = httpx.get(f"{url}/v1/requests/nope", params={"endpoint": "iris"})
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert error["code"] == "request_not_found"
    assert "'nope'" in error["message"] and "not sampled" in error["message"]
    assert httpx.get(f"{url}/v1/requests/nope").status_code == 404
    too_long = httpx.get(f"{url}/v1/requests/{'x' * 200}")
    assert too_long.status_code == 422 and "1 to 128 characters" in too_long.json()["error"]["message"]
    path_trick = httpx.get(f"{url}/v1/requests/{REQUEST_ID}", params={"endpoint": "../.."})
    assert path_trick.status_code == 422 and "not a valid endpoint name" in path_trick.json()["error"]["message"]
    # A deleted or never-created endpoint has no log: the same 404.
    assert httpx.get(f"{url}/v1/requests/{REQUEST_ID}", params={"endpoint": "gone"}).status_code == 404


def test_a_scoped_key_traces_only_its_own_endpoints(traced: tuple[ServerUrl, Workspace, dict[str, Any]]) -> None:
    url, workspace, _ = traced
    _, mine = workspace.keys.create("mine", role=Role.VIEWER, endpoints=["iris"])
    _, theirs = workspace.keys.create("theirs", role=Role.VIEWER, endpoints=["other"])
    _, app = workspace.keys.create("app", role=Role.PREDICTOR)
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/v1/requests/{REQUEST_ID}").status_code != 401:
        assert time.monotonic() < deadline, "the server did not pick up the keys"
        time.sleep(0.1)

    def get(key: str, **params: str) -> httpx.Response:
        return httpx.get(f"{url}/v1/requests/{REQUEST_ID}", params=params, headers={"authorization": f"Bearer {key}"})

    assert get(mine).status_code == 200 and get(mine, endpoint="iris").status_code == 200
    assert get(theirs, endpoint="iris").status_code == 403
    assert get(theirs).status_code == 404  # its search never reads another endpoint's log
    assert get(app).status_code == 403  # predictors do not read


def test_the_cli_traces_from_the_local_store_and_from_a_server(
    settings: Settings, traced: tuple[ServerUrl, Workspace, dict[str, Any]]
) -> None:
    url, _, _ = traced
    over_http = httpx.get(f"{url}/v1/requests/{REQUEST_ID}").json()
    local = cli(settings, "trace", REQUEST_ID, "--json")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout) == over_http
    remote = cli(settings, "trace", REQUEST_ID, "--endpoint", "iris", "--json", SHIPYARD_URL=url)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == over_http
    text = cli(settings, "trace", REQUEST_ID, "--endpoint", "iris")
    assert text.returncode == 0, text.stderr
    assert over_http["sha256"] in text.stdout and over_http["version"] in text.stdout
    assert "canary" in text.stdout and "candidate weight 0.5" in text.stdout
    for env in ({}, {"SHIPYARD_URL": url}):
        missing = cli(settings, "trace", "nope", **env)
        assert missing.returncode == 1
        lines = missing.stderr.strip().splitlines()
        assert len(lines) == 1 and "'nope'" in lines[0] and "not sampled" in lines[0], missing.stderr


def test_a_request_not_sampled_into_the_log_is_a_404(settings: Settings, workspace: Workspace) -> None:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    unsampled = settings.model_copy(update={"log_sample_rate": 0.0, "log_flush_s": 0.05})
    with running_server(unsampled, workspace) as url:
        served = httpx.post(
            f"{url}/v1/endpoints/iris/predict", json={"instances": ROWS}, headers={"X-Request-ID": "r1"}
        )
        assert served.status_code == 200
        missing = httpx.get(f"{url}/v1/requests/r1", params={"endpoint": "iris"})
        assert missing.status_code == 404 and "not sampled" in missing.json()["error"]["message"]
