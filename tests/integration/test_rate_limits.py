"""Rate limits on a real server: a burst, then 429 with Retry-After, recovery, metrics, per key and per address."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from shipyard.config import Settings
from shipyard.core.identity import Role
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import running_server

ROW = {"instances": [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]}
POLL_S = 0.2


def _served(settings: Settings, workspace: Workspace, **limits: object) -> Iterator[str]:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    with running_server(settings.model_copy(update={"poll_interval_s": POLL_S, **limits}), workspace) as url:
        yield url


@pytest.fixture
def endpoint_limited(settings: Settings, workspace: Workspace) -> Iterator[str]:
    yield from _served(settings, workspace, rate_limit_rps=0.5, rate_limit_burst=3)


def _predict(url: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/endpoints/iris/predict", json=ROW, headers=headers, timeout=10)


def _limited_count(url: str, endpoint: str, reason: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(rf'shipyard_rate_limited_total\{{endpoint="{endpoint}",reason="{reason}"\}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_a_burst_is_served_then_429_with_retry_after_then_recovery(endpoint_limited: str) -> None:
    url = endpoint_limited
    answers = [_predict(url) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    refused = _predict(url)
    assert refused.status_code == 429
    assert refused.headers["retry-after"].isdigit() and int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and "endpoint 'iris'" in error["message"] and error["request_id"]
    # feedback and V2 infer draw on the same endpoint's bucket
    assert httpx.post(f"{url}/v1/endpoints/iris/feedback", json={"request_id": "x", "label": 1}).status_code == 429
    v2 = httpx.post(f"{url}/v2/models/iris/infer", json={"inputs": []})
    assert v2.status_code == 429 and "rate limit" in v2.json()["error"]
    assert _limited_count(url, "iris", "endpoint") == 3
    time.sleep(2.1)  # one token at 0.5/s
    assert _predict(url).status_code == 200
    # reads are never limited
    assert all(httpx.get(f"{url}/v1/endpoints").status_code == 200 for _ in range(10))


@pytest.fixture
def key_limited(settings: Settings, workspace: Workspace) -> Iterator[tuple[str, Workspace]]:
    for url in _served(settings, workspace, rate_limit_key_rps=0.5, rate_limit_key_burst=2):
        yield url, workspace


def test_a_keys_limit_is_independent_of_another_keys(key_limited: tuple[str, Workspace]) -> None:
    url, ws = key_limited
    _, first = ws.keys.create("first", role=Role.PREDICTOR)
    _, second = ws.keys.create("second", role=Role.PREDICTOR)
    deadline = time.monotonic() + 10
    while _predict(url).status_code != 401:  # the ring is loaded within the poll interval
        assert time.monotonic() < deadline
        time.sleep(POLL_S / 2)
    assert [_predict(url, authorization=f"Bearer {first}").status_code for _ in range(2)] == [200, 200]
    refused = _predict(url, authorization=f"Bearer {first}")
    assert refused.status_code == 429 and "key:first" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert _predict(url, authorization=f"Bearer {second}").status_code == 200
    assert _limited_count(url, "iris", "key") == 1


@pytest.fixture
def brute_force_limited(settings: Settings, workspace: Workspace) -> Iterator[tuple[str, Workspace]]:
    for url in _served(settings, workspace, auth_failures_per_minute=5):
        yield url, workspace


def test_failed_authentication_is_rate_limited_per_address_and_logged(
    brute_force_limited: tuple[str, Workspace], caplog: pytest.LogCaptureFixture
) -> None:
    url, ws = brute_force_limited
    _, secret = ws.keys.create("ci", role=Role.PREDICTOR)
    deadline = time.monotonic() + 10
    while _predict(url).status_code != 401:  # no credentials: not a failed attempt, not counted
        assert time.monotonic() < deadline
        time.sleep(POLL_S / 2)
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with caplog.at_level(logging.WARNING, logger="shipyard.auth"):
        assert [_predict(url, authorization=f"Bearer {wrong}").status_code for _ in range(5)] == [401] * 5
        blocked = _predict(url, authorization=f"Bearer {wrong}")
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        assert "too many failed authentications" in blocked.json()["error"]["message"]
        # while blocked, even a right key from that address waits: a guess that happens to be right is not let in
        assert _predict(url, authorization=f"Bearer {secret}").status_code == 429
    assert any("too many failed authentications from 127.0.0.1" in r.getMessage() for r in caplog.records)
    assert _limited_count(url, "", "auth_failures") == 2
    assert httpx.get(f"{url}/healthz").status_code == 200  # open routes stay open
