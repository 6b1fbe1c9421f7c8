"""The HTTP contract of PRODUCT.md on a real server on 127.0.0.1, backed by a real store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.client import Client
from shipyard.config import Settings
from shipyard.errors import EndpointNotFoundError, SignatureError
from shipyard.workspace import Workspace
from tests.models import churn_frame, churn_pipeline, iris
from tests.serving_models import RaisesOnNegative, Sleepy
from tests.serving_support import running_server

IRIS_ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"poll_interval_s": 0.2, "max_request_rows": 100, "max_request_bytes": 64_000})


@pytest.fixture
def served(fast_settings: Settings, workspace: Workspace) -> Iterator[tuple[str, Workspace]]:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    frame, target = churn_frame()
    workspace.registry.register(
        churn_pipeline(), name="churn", sample_input=frame.head(40), training_data=frame, training_target=target
    )
    workspace.endpoints.create("iris", model="iris:1")
    workspace.endpoints.create("churn", model="churn:1")
    workspace.endpoints.create("churn-strict", model="churn:1", strict=True)
    with running_server(fast_settings, workspace) as url:
        yield url, workspace


def post(url: str, endpoint: str, body: object | bytes, **headers: str) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(f"{url}/v1/endpoints/{endpoint}/predict", content=body, headers=headers, timeout=10)
    return httpx.post(f"{url}/v1/endpoints/{endpoint}/predict", json=body, headers=headers, timeout=10)


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
    assert response.headers["x-request-id"] == body["error"]["request_id"]
    return body["error"]


def test_predict_rows_and_columns_match_the_model(served: tuple[str, Workspace]) -> None:
    url, _ = served
    x, _, model = iris()
    rows = [dict(zip(["f0", "f1", "f2", "f3"], map(float, r), strict=True)) for r in x[:5]]
    response = post(url, "iris", {"instances": rows})
    assert response.status_code == 200
    body = response.json()
    assert body["predictions"] == model.predict(x[:5]).tolist()
    np.testing.assert_allclose(body["probabilities"], model.predict_proba(x[:5]))
    assert body["classes"] == [0, 1, 2]
    assert (body["endpoint"], body["model"], body["version"]) == ("iris", "iris", 1)
    assert response.headers["x-model-version"] == "iris:1"
    assert response.headers["x-request-id"] == body["request_id"]
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    assert post(url, "iris", {"inputs": columns}).json()["predictions"] == body["predictions"]


def test_string_features_and_categories_through_http(served: tuple[str, Workspace]) -> None:
    url, _ = served
    frame, _ = churn_frame()
    rows = frame.head(8).to_dict(orient="records")
    body = post(url, "churn", {"instances": rows}).json()
    assert body["predictions"] == churn_pipeline().predict(frame.head(8)).tolist()


def test_request_ids_are_kept_when_sane_and_replaced_when_not(served: tuple[str, Workspace]) -> None:
    url, _ = served
    kept = post(url, "iris", {"instances": [IRIS_ROW]}, **{"X-Request-ID": "order-123.abc"})
    assert kept.headers["x-request-id"] == "order-123.abc" == kept.json()["request_id"]
    replaced = post(url, "iris", {"instances": [IRIS_ROW]}, **{"X-Request-ID": "bad id with spaces"})
    assert replaced.headers["x-request-id"] != "bad id with spaces" and len(replaced.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        ([1, 2], 400, "JSON object"),
        ({"instances": {"f0": 1}}, 400, "'instances' must be a list"),
        ({"instances": []}, 400, "'instances' is empty"),
        ({"rows": []}, 400, "exactly one of"),
        ({"instances": [{"f1": 3.5, "f2": 1.4, "f3": 0.2}]}, 422, "row 0: feature 'f0' is missing"),
        ({"instances": [IRIS_ROW, {**IRIS_ROW, "f2": "tall"}]}, 422, "row 1: feature 'f2' expects a number"),
        ({"instances": [IRIS_ROW, IRIS_ROW, {**IRIS_ROW, "f3": None}]}, 422, "row 2: feature 'f3' is missing (null)"),
        ({"instances": [IRIS_ROW] * 101}, 413, "over the limit of 100"),
        ({"inputs": {"f0": [1.0], "f1": [1.0]}}, 422, "missing features ['f2', 'f3']"),
    ],
)
def test_bad_requests_get_the_documented_status_and_a_clear_message(
    served: tuple[str, Workspace], body: object, status: int, fragment: str
) -> None:
    url, _ = served
    response = post(url, "iris", body)
    assert response.status_code == status
    assert fragment in error_of(response)["message"]


def test_oversized_body_is_413_and_unknown_endpoint_is_404(served: tuple[str, Workspace]) -> None:
    url, _ = served
    huge = b'{"instances": [' + b'{"f0": 1.0, "f1": 1.0, "f2": 1.0, "f3": 1.0},' * 2000 + b"{}]}"
    assert post(url, "iris", huge).status_code == 413
    missing = post(url, "fraud", {"instances": [IRIS_ROW]})
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "endpoint_not_found"
    assert httpx.get(f"{url}/v1/nothing-here").status_code == 404


def test_extra_features_are_ignored_unless_the_endpoint_is_strict(served: tuple[str, Workspace]) -> None:
    url, _ = served
    frame, _ = churn_frame()
    row = {**frame.head(1).to_dict(orient="records")[0], "coupon": "SPRING"}
    assert post(url, "churn", {"instances": [row]}).status_code == 200
    strict = post(url, "churn-strict", {"instances": [row]})
    assert strict.status_code == 422 and "unexpected feature ['coupon']" in error_of(strict)["message"]


def test_unseen_categories_are_served_and_counted(served: tuple[str, Workspace]) -> None:
    url, _ = served
    frame, _ = churn_frame()
    row = {**frame.head(1).to_dict(orient="records")[0], "plan": "enterprise"}
    assert post(url, "churn", {"instances": [row, row]}).status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert 'shipyard_unseen_categories_total{endpoint="churn",feature="plan",version="churn:1"} 2.0' in metrics


def test_metrics_count_requests_latency_load_time_and_in_flight(served: tuple[str, Workspace]) -> None:
    url, _ = served
    for _ in range(3):
        post(url, "iris", {"instances": [IRIS_ROW]})
    post(url, "iris", {"instances": []})
    text = httpx.get(f"{url}/metrics").text
    assert 'shipyard_requests_total{endpoint="iris",status="200",version="iris:1"} 3.0' in text
    assert 'shipyard_requests_total{endpoint="iris",status="400",version="none"} 1.0' in text
    assert 'shipyard_request_latency_seconds_count{endpoint="iris",version="iris:1"} 3.0' in text
    assert 'shipyard_model_load_seconds{version="iris:1"}' in text
    assert "shipyard_requests_in_flight" in text


def test_health_readiness_and_openapi(served: tuple[str, Workspace]) -> None:
    url, _ = served
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz").json()
    assert ready["ready"] and ready["endpoints"]["iris"] == "iris:1"
    spec = httpx.get(f"{url}/openapi.json").json()
    assert "/v1/endpoints/{endpoint}/predict" in spec["paths"]
    assert httpx.get(f"{url}/docs").status_code == 200


def test_model_that_raises_is_a_500_with_the_request_id_only(fast_settings: Settings, workspace: Workspace) -> None:
    sample = pd.DataFrame({"x": [1.0, 2.0]})
    workspace.registry.register(RaisesOnNegative(), name="fragile", sample_input=sample, trusted=True)
    workspace.endpoints.create("fragile", model="fragile:1")
    with running_server(fast_settings, workspace) as url:
        ok = post(url, "fragile", {"instances": [{"x": 2.0}]})
        assert ok.json()["predictions"] == [4.0]
        failed = post(url, "fragile", {"instances": [{"x": -1.0}]}, **{"X-Request-ID": "req-42"})
        assert failed.status_code == 500
        error = error_of(failed)
        assert error["request_id"] == "req-42" and "negative" not in failed.text and "Traceback" not in failed.text
        metrics = httpx.get(f"{url}/metrics").text
        assert 'shipyard_model_errors_total{endpoint="fragile",version="fragile:1"} 1.0' in metrics
        assert 'shipyard_requests_total{endpoint="fragile",status="500",version="fragile:1"} 1.0' in metrics


def test_slow_models_are_called_off_the_event_loop(fast_settings: Settings, workspace: Workspace) -> None:
    workspace.registry.register(Sleepy(), name="sleepy", sample_input=pd.DataFrame({"x": [1.0]}), trusted=True)
    workspace.endpoints.create("sleepy", model="sleepy:1")
    with running_server(fast_settings, workspace) as url:
        served = next(iter(url.app.state.dataplane.routes["sleepy"].models.values()))
        assert served.inline is False
        assert post(url, "sleepy", {"instances": [{"x": 1.0}]}).json()["predictions"] == [2.0]


def test_endpoint_changes_are_picked_up_without_restart_and_no_request_fails(
    fast_settings: Settings, workspace: Workspace
) -> None:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.registry.set_alias("iris:1", "champion")
    workspace.endpoints.create("iris", model="iris@champion")
    failures: list[str] = []
    versions_seen: list[int] = []
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                response = client.post("/v1/endpoints/iris/predict", json={"instances": [IRIS_ROW]})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    versions_seen.append(response.json()["version"])

    with running_server(fast_settings, workspace) as url:
        threads = [threading.Thread(target=load, args=(url,)) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        moved_at = time.monotonic()
        workspace.registry.set_alias("iris:2", "champion")  # the alias moves; the endpoint follows it
        while time.monotonic() - moved_at < 5 and (not versions_seen or versions_seen[-1] != 2):
            time.sleep(0.05)
        switch_s = time.monotonic() - moved_at
        workspace.registry.register(model, name="brand-new", sample_input=x[:20])
        workspace.endpoints.create("brand-new", model="brand-new:1")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and post(url, "brand-new", {"instances": [IRIS_ROW]}).status_code != 200:
            time.sleep(0.05)
        new_endpoint = post(url, "brand-new", {"instances": [IRIS_ROW]})
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert switch_s < 2.0
    assert versions_seen[0] == 1 and versions_seen[-1] == 2
    assert new_endpoint.status_code == 200


def test_a_version_that_cannot_load_leaves_the_old_one_serving(fast_settings: Settings, workspace: Workspace) -> None:
    x, y, model = iris()
    first = workspace.registry.register(model, name="iris", sample_input=x[:20])
    other = LogisticRegression(max_iter=500, C=0.5).fit(x, y)
    broken = workspace.registry.register(other, name="iris", sample_input=x[:20])
    assert broken.sha256 != first.sha256  # its own artifact file, so tampering with it leaves iris:1 whole
    workspace.endpoints.create("iris", model="iris:1")
    path = Path(workspace.artifacts.location(broken.sha256))
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    failures = 'shipyard_model_load_failures_total{version="iris:2"} '
    with running_server(fast_settings, workspace) as url:
        workspace.endpoints.set_model("iris", model="iris:2")
        deadline = time.monotonic() + 20
        while failures not in httpx.get(f"{url}/metrics").text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert failures in httpx.get(f"{url}/metrics").text  # the load of iris:2 was attempted, and failed
        response = post(url, "iris", {"instances": [IRIS_ROW]})
        assert response.status_code == 200 and response.json()["version"] == 1
        readiness = httpx.get(f"{url}/readyz").json()
        assert readiness["endpoints"]["iris"] == "iris:1"
        assert readiness["degraded"]["iris"]["wanted"] == "iris:2"


def test_python_client_and_errors(served: tuple[str, Workspace]) -> None:
    url, _ = served
    with Client(url) as client:
        result = client.predict("iris", [IRIS_ROW], request_id="client-1")
        assert result.request_id == "client-1" and result.ref == "iris:1" and len(result.predictions) == 1
        assert result.probabilities is not None and result.classes == [0, 1, 2]
        with pytest.raises(SignatureError, match="feature 'f0'"):
            client.predict("iris", [{"f1": 1.0, "f2": 1.0, "f3": 1.0}])
        with pytest.raises(EndpointNotFoundError):
            client.predict("nope", [IRIS_ROW])


def test_each_artifact_is_loaded_once_however_many_endpoints_serve_it(
    fast_settings: Settings, workspace: Workspace
) -> None:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.registry.set_alias("iris:1", "champion")
    for name, ref in (("a", "iris:1"), ("b", "iris@champion"), ("c", "iris:1")):
        workspace.endpoints.create(name, model=ref)
    with running_server(fast_settings, workspace) as url:
        routes = url.app.state.dataplane.routes
        predictors = {id(next(iter(routes[name].models.values())).model.predictor) for name in ("a", "b", "c")}
        assert len(predictors) == 1
        assert all(post(url, name, {"instances": [IRIS_ROW]}).status_code == 200 for name in ("a", "b", "c"))
