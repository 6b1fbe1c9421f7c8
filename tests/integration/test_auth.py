"""API keys on a real server: auth turns on with the first key, roles and scopes decide, revocation spreads."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from shipyard.config import Settings
from shipyard.core.identity import Role, split_key
from shipyard.errors import ConflictError, InvalidArgumentError
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import free_port, running_server

ROW = {"instances": [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]}
POLL_S = 0.2


@pytest.fixture
def served(settings: Settings, workspace: Workspace) -> Iterator[tuple[str, Workspace]]:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    workspace.endpoints.create("other", model="iris:1")
    with running_server(settings.model_copy(update={"poll_interval_s": POLL_S}), workspace) as url:
        yield url, workspace


def _predict(url: str, endpoint: str = "iris", **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/endpoints/{endpoint}/predict", json=ROW, headers=headers, timeout=10)


def _eventually(check: object, timeout_s: float = 10 * POLL_S + 2) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the server did not pick up the key change within the poll interval"
        time.sleep(POLL_S / 2)


def test_auth_is_off_for_one_user_and_on_from_the_first_key(served: tuple[str, Workspace]) -> None:
    url, ws = served
    assert _predict(url).status_code == 200  # no keys, loopback: the embedded single-user mode
    _, secret = ws.keys.create("ci", role=Role.PREDICTOR)
    _eventually(lambda: _predict(url).status_code == 401)
    refused = _predict(url)
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.json()["error"]["code"] == "unauthenticated"
    assert _predict(url, authorization=f"Bearer {secret}").status_code == 200
    assert _predict(url, **{"x-api-key": secret}).status_code == 200
    # health stays open for probes; the API description too
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/readyz").status_code == 200


def test_roles_and_scopes_decide_and_say_what_is_missing(served: tuple[str, Workspace]) -> None:
    url, ws = served
    _, predictor = ws.keys.create("app", role="predictor", endpoints=["iris"])
    _, viewer = ws.keys.create("dash", role="viewer")
    _eventually(lambda: _predict(url).status_code == 401)
    assert _predict(url, authorization=f"Bearer {predictor}").status_code == 200
    wrong_scope = _predict(url, "other", authorization=f"Bearer {predictor}")
    assert wrong_scope.status_code == 403 and "endpoint 'other'" in wrong_scope.json()["error"]["message"]
    not_allowed = _predict(url, authorization=f"Bearer {viewer}")
    assert not_allowed.status_code == 403 and "needs predict" in not_allowed.json()["error"]["message"]
    listing = httpx.get(f"{url}/v1/endpoints", headers={"authorization": f"Bearer {viewer}"})
    assert listing.status_code == 200
    deleting = httpx.delete(f"{url}/v1/endpoints/iris", headers={"authorization": f"Bearer {viewer}"})
    assert deleting.status_code == 403
    assert [e.name for e in ws.endpoints.list()] == ["iris", "other"]  # nothing changed


def test_a_revoked_key_stops_working_within_the_poll_interval(served: tuple[str, Workspace]) -> None:
    url, ws = served
    _, secret = ws.keys.create("ci", role="predictor")
    _eventually(lambda: _predict(url, authorization=f"Bearer {secret}").status_code == 200)
    ws.keys.revoke("ci")
    _eventually(lambda: _predict(url, authorization=f"Bearer {secret}").status_code == 401)


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer shy_0000000000000000_" + "A" * 43,
        "Bearer shy_not-a-key",
        "Bearer " + "x" * 20_000,
        "Bearer a.b.c",
    ],
)
def test_malformed_or_unknown_credentials_are_a_401_that_leaks_nothing(
    served: tuple[str, Workspace], authorization: str
) -> None:
    url, ws = served
    _, secret = ws.keys.create("ci", role="predictor")
    _eventually(lambda: _predict(url).status_code == 401)
    response = _predict(url, authorization=authorization)
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert secret not in message and len(message) < 120 and "\n" not in message


def test_keys_store_only_a_hash_and_refuse_bad_names(workspace: Workspace) -> None:
    key, secret = workspace.keys.create("ci", role="operator", endpoints=["fraud"])
    key_id, raw = split_key(secret) or ("", "")
    assert key_id == key.key_id and raw not in repr(key) and raw not in str(key.to_dict())
    assert key.matches(raw) and not key.matches(raw[:-1] + ("A" if raw[-1] != "A" else "B"))
    with pytest.raises(ConflictError):
        workspace.keys.create("ci", role="viewer")
    with pytest.raises(InvalidArgumentError, match="scope"):
        workspace.keys.create("bad", role="viewer", endpoints=["../etc"])
    with pytest.raises(InvalidArgumentError, match="unknown role"):
        workspace.keys.create("bad", role="root")
    assert [k.name for k in workspace.keys.list()] == ["ci"]


def test_serve_refuses_a_public_address_with_auth_off(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SHIPYARD_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to serve on 0.0.0.0 with auth off" in lines[0] and "--insecure" in lines[0]
