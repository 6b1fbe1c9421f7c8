"""Cross-site requests on a real server: what a web page could send from a browser is refused, nothing changes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
import sqlalchemy as sa

from shipyard.client import Client
from shipyard.config import Settings
from shipyard.store.tables import feedback as feedback_table
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import running_server

ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}
ALLOWED = "https://dash.example.com"


@pytest.fixture
def served(settings: Settings, workspace: Workspace) -> Iterator[tuple[str, Workspace]]:
    """Auth off (one user on loopback): the case a page in the same user's browser could abuse."""
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    with running_server(settings.model_copy(update={"cors_origins": (ALLOWED,)}), workspace) as url:
        yield url, workspace


def _feedback_rows(ws: Workspace) -> int:
    with ws.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(feedback_table)).scalar_one())


def _refused(response: httpx.Response, words: str) -> None:
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type" and words in error["message"] and error["request_id"]


def test_text_plain_feedback_is_refused_and_the_json_one_recorded(served: tuple[str, Workspace]) -> None:
    url, ws = served
    request_id = httpx.post(f"{url}/v1/endpoints/iris/predict", json={"instances": [ROW]}).json()["request_id"]
    body = f'{{"request_id": "{request_id}", "label": 1}}'
    feedback = f"{url}/v1/endpoints/iris/feedback"
    _refused(httpx.post(feedback, content=body, headers={"content-type": "text/plain"}), "text/plain")
    _refused(httpx.post(feedback, content=body), "needs Content-Type: application/json")  # a Blob without a type
    form = httpx.post(feedback, data={"request_id": request_id, "label": "1"})
    _refused(form, "application/x-www-form-urlencoded")
    assert _feedback_rows(ws) == 0  # nothing was recorded
    accepted = httpx.post(feedback, content=body, headers={"content-type": "application/json; charset=utf-8"})
    assert accepted.status_code in (200, 201, 202), accepted.text
    assert _feedback_rows(ws) == 1


def test_a_form_encoded_rollout_abort_changes_nothing_and_the_clients_does(served: tuple[str, Workspace]) -> None:
    url, ws = served
    ws.rollouts.start("iris", to="iris:2", strategy="canary", steps="10,50,100", interval_s="1h")
    abort = f"{url}/v1/endpoints/iris/rollouts/current/abort"
    _refused(httpx.post(abort, data={"reason": "x"}), "application/x-www-form-urlencoded")
    _refused(httpx.post(abort), "X-Shipyard-Client")  # bodyless, no header: what fetch(url, {method: "POST"}) sends
    _refused(httpx.delete(f"{url}/v1/endpoints/iris"), "X-Shipyard-Client")
    assert ws.rollouts.status("iris").state.status.value == "running"
    assert [e.name for e in ws.endpoints.list()] == ["iris"]
    paused = httpx.post(f"{url}/v1/endpoints/iris/rollouts/current/pause", headers={"X-Shipyard-Client": "1"})
    assert paused.status_code == 200, paused.text
    aborted = httpx.post(abort, json={"reason": "support says no"})
    assert aborted.status_code == 200, aborted.text
    assert ws.rollouts.status("iris").state.status.value == "rolled_back"


def test_the_client_sends_the_header_so_its_calls_work(served: tuple[str, Workspace]) -> None:
    url, _ = served
    with Client(url) as client:
        assert client.predict("iris", [ROW]).predictions
        assert client._http.headers["X-Shipyard-Client"] == "1"


def test_v2_infer_takes_json_binary_or_no_type_but_not_a_form(served: tuple[str, Workspace]) -> None:
    url, _ = served
    infer = f"{url}/v2/models/iris/infer"
    body = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in ROW.items()]}
    assert httpx.post(infer, json=body).status_code == 200
    assert httpx.post(infer, content=orjson.dumps(body)).status_code == 200  # what Triton's clients send
    text = httpx.post(infer, content=orjson.dumps(body), headers={"content-type": "text/plain"})
    assert text.status_code == 415 and "text/plain" in text.json()["error"]  # the V2 error shape


def test_cors_is_answered_for_listed_origins_only(served: tuple[str, Workspace]) -> None:
    url, _ = served
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    target = f"{url}/v1/endpoints/iris/predict"
    allowed = httpx.options(target, headers={"origin": ALLOWED, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in allowed.headers["access-control-allow-methods"]
    other = httpx.options(target, headers={"origin": "https://evil.example.net", **preflight})
    assert "access-control-allow-origin" not in other.headers
    simple = httpx.get(f"{url}/v1/endpoints", headers={"origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in simple.headers


def test_cors_is_off_by_default(sqlite_workspace: Workspace, tmp_path: object) -> None:
    settings = sqlite_workspace.settings
    assert settings.cors_origins == ()
    with running_server(settings, sqlite_workspace, ready=False) as url:
        answer = httpx.options(
            f"{url}/v1/endpoints",
            headers={"origin": ALLOWED, "access-control-request-method": "GET"},
        )
        assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("origins", ["*", "dash.example.com", "https://dash.example.com/app"])
def test_a_cors_origin_that_is_not_scheme_and_host_is_refused(origins: str) -> None:
    from shipyard.errors import ConfigError

    with pytest.raises(ConfigError, match="cors_origins"):
        Settings.load(cors_origins=origins)
