"""The Open Inference Protocol (V2) REST API, driven by the real ``tritonclient`` on a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as httpclient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from tritonclient.utils import InferenceServerException

from shipyard.config import Settings
from shipyard.serving.v2 import DATATYPES
from shipyard.workspace import Workspace
from tests.models import churn_frame, churn_pipeline, iris, regression
from tests.serving_models import RaisesOnNegative
from tests.serving_support import running_server

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"poll_interval_s": 0.2, "max_request_rows": 100, "max_request_bytes": 64_000})


@pytest.fixture
def served(fast_settings: Settings, workspace: Workspace) -> Iterator[str]:
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
        yield url


def client_for(url: str) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url.removeprefix("http://"))


def tensor(name: str, values: np.ndarray, datatype: str) -> httpclient.InferInput:
    shaped = httpclient.InferInput(name, list(values.shape), datatype)
    shaped.set_data_from_numpy(values, binary_data=False)
    return shaped


def wanted(*names: str) -> list[httpclient.InferRequestedOutput]:
    return [httpclient.InferRequestedOutput(name, binary_data=False) for name in names]


def iris_columns(x: np.ndarray) -> list[httpclient.InferInput]:
    return [tensor(name, x[:, [i]], "FP64") for i, name in enumerate(FEATURES)]


def churn_tensors(frame: pd.DataFrame) -> list[httpclient.InferInput]:
    return [
        tensor("tenure_months", frame["tenure_months"].to_numpy(dtype=np.int64), "INT64"),
        tensor("monthly_charges", frame["monthly_charges"].to_numpy(dtype=np.float64), "FP64"),
        tensor("plan", frame["plan"].to_numpy(dtype=object), "BYTES"),
        tensor("region", frame["region"].to_numpy(dtype=object), "BYTES"),
    ]


def infer_raw(url: str, model: str, body: object | bytes, **headers: str) -> httpx.Response:
    path = f"{url}/v2/models/{model}/infer"
    if isinstance(body, bytes):
        return httpx.post(path, content=body, headers=headers, timeout=10)
    return httpx.post(path, json=body, headers=headers, timeout=10)


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    assert response.headers["x-request-id"]
    return str(body["error"])


def fp64(name: str, data: list[Any], shape: list[int] | None = None) -> dict[str, Any]:
    return {"name": name, "shape": shape or [len(data)], "datatype": "FP64", "data": data}


def iris_body(rows: int = 2, **overrides: Any) -> dict[str, Any]:
    x, _, _ = iris()
    inputs = [fp64(name, x[:rows, i].tolist()) for i, name in enumerate(FEATURES)]
    return {"inputs": inputs, **overrides}


def test_health_and_metadata_describe_each_endpoint_from_its_signature(served: str) -> None:
    client = client_for(served)
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata() == {"name": "shipyard", "version": "0.1.0", "extensions": []}
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
    assert not client.is_model_ready("iris", "2") and not client.is_model_ready("fraud")

    meta = client.get_model_metadata("iris")
    assert meta == client.get_model_metadata("iris", "1")
    assert (meta["name"], meta["versions"], meta["platform"]) == ("iris", ["1"], "shipyard-sklearn")
    assert meta["inputs"] == [{"name": name, "datatype": "FP64", "shape": [-1, 1]} for name in FEATURES]
    assert meta["outputs"] == [
        {"name": "predictions", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]},
    ]
    churn = client.get_model_metadata("churn")
    assert [(i["name"], i["datatype"]) for i in churn["inputs"]] == [
        ("tenure_months", "INT64"),
        ("monthly_charges", "FP64"),
        ("plan", "BYTES"),
        ("region", "BYTES"),
    ]
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("fraud")
    assert unknown.value.status() == "404" and "no endpoint named 'fraud'" in unknown.value.message()
    other_version = httpx.get(f"{served}/v2/models/iris/versions/7")
    assert other_version.status_code == 404 and "serves version 1" in error_of(other_version)


def test_infer_with_one_tensor_per_feature_matches_the_model(served: str) -> None:
    x, _, model = iris()
    client = client_for(served)
    result = client.infer(
        "iris", iris_columns(x[:20]), outputs=wanted("predictions", "probabilities"), request_id="order-7"
    )
    np.testing.assert_array_equal(result.as_numpy("predictions"), model.predict(x[:20]))
    probabilities = result.as_numpy("probabilities")
    assert probabilities is not None and probabilities.shape == (20, 3)
    np.testing.assert_allclose(probabilities, model.predict_proba(x[:20]))
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("iris", "1", "order-7")
    assert response["outputs"][1]["parameters"] == {"classes": [0, 1, 2]}
    pinned = client.infer("iris", iris_columns(x[:3]), model_version="1", outputs=wanted("predictions"))
    np.testing.assert_array_equal(pinned.as_numpy("predictions"), model.predict(x[:3]))

    flat = infer_raw(served, "iris", iris_body(3), **{"X-Request-ID": "req-flat"})
    assert flat.status_code == 200
    assert flat.headers["x-request-id"] == "req-flat" == flat.json()["id"]
    assert flat.headers["x-model-version"] == "iris:1"
    assert flat.json()["outputs"][0] == {
        "name": "predictions",
        "shape": [3],
        "datatype": "INT64",
        "data": model.predict(x[:3]).tolist(),
    }


@pytest.mark.parametrize(("datatype", "dtype"), [("FP64", np.float64), ("FP32", np.float32)])
def test_infer_with_one_matrix_tensor_for_an_all_numeric_model(served: str, datatype: str, dtype: type) -> None:
    x, _, model = iris()
    batch = x[40:60].astype(dtype)
    result = client_for(served).infer(
        "iris", [tensor("input__0", batch, datatype)], outputs=wanted("predictions", "probabilities")
    )
    np.testing.assert_array_equal(result.as_numpy("predictions"), model.predict(batch.astype(np.float64)))
    np.testing.assert_allclose(result.as_numpy("probabilities"), model.predict_proba(batch.astype(np.float64)))


def test_infer_sends_string_features_as_bytes_tensors(served: str) -> None:
    frame, _ = churn_frame()
    rows = frame.head(12)
    pipeline = churn_pipeline()
    result = client_for(served).infer("churn", churn_tensors(rows), outputs=wanted("predictions", "probabilities"))
    np.testing.assert_array_equal(result.as_numpy("predictions"), pipeline.predict(rows))
    np.testing.assert_allclose(result.as_numpy("probabilities"), pipeline.predict_proba(rows))


def test_string_labels_come_back_as_bytes_and_regressors_have_no_probabilities(
    fast_settings: Settings, workspace: Workspace
) -> None:
    x, y, _ = iris()
    labels = np.array(["setosa", "versicolor", "virginica"])[y.astype(int)]
    named = LogisticRegression(max_iter=500).fit(x, labels)
    workspace.registry.register(named, name="species", sample_input=x[:20])
    rx, _, linear = regression()
    workspace.registry.register(linear, name="linear", sample_input=rx[:20])
    workspace.endpoints.create("species", model="species:1")
    workspace.endpoints.create("linear", model="linear:1")
    with running_server(fast_settings, workspace) as url:
        client = client_for(url)
        species = client.infer("species", iris_columns(x[45:55]), outputs=wanted("predictions", "probabilities"))
        assert species.get_output("predictions")["datatype"] == "BYTES"
        assert species.get_response()["outputs"][0]["data"] == named.predict(x[45:55]).tolist()
        assert species.get_output("probabilities")["parameters"]["classes"] == ["setosa", "versicolor", "virginica"]
        meta = client.get_model_metadata("linear")
        assert meta["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]
        columns = [tensor(f"f{i}", rx[:5, i], "FP64") for i in range(3)]
        result = client.infer("linear", columns, outputs=wanted("predictions"))
        np.testing.assert_allclose(result.as_numpy("predictions"), linear.predict(rx[:5]))
        with pytest.raises(InferenceServerException) as no_proba:
            client.infer("linear", columns, outputs=wanted("probabilities"))
        assert no_proba.value.status() == "400" and "has outputs ['predictions']" in no_proba.value.message()


def test_requested_outputs_choose_what_comes_back(served: str) -> None:
    x, _, model = iris()
    client = client_for(served)
    only_proba = client.infer("iris", iris_columns(x[:4]), outputs=wanted("probabilities"))
    assert [o["name"] for o in only_proba.get_response()["outputs"]] == ["probabilities"]
    assert only_proba.as_numpy("predictions") is None
    np.testing.assert_allclose(only_proba.as_numpy("probabilities"), model.predict_proba(x[:4]))
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("iris", iris_columns(x[:4]), outputs=wanted("scores"))
    assert unknown.value.status() == "400"
    assert "unknown output 'scores'" in unknown.value.message() and "probabilities" in unknown.value.message()


def test_tritonclient_sees_protocol_errors_with_status_and_message(served: str) -> None:
    x, _, _ = iris()
    client = client_for(served)
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("fraud", iris_columns(x[:2]), outputs=wanted("predictions"))
    assert unknown.value.status() == "404" and unknown.value.message() == "no endpoint named 'fraud'"

    with pytest.raises(InferenceServerException) as missing:
        client.infer("iris", iris_columns(x[:2])[:3], outputs=wanted("predictions"))
    assert missing.value.status() == "422" and "['f3'] missing" in missing.value.message()
    inputs = [*iris_columns(x[:2])[:3], tensor("f3", np.array(["a", "b"], dtype=object), "BYTES")]
    with pytest.raises(InferenceServerException) as mistyped:
        client.infer("iris", inputs, outputs=wanted("predictions"))
    assert mistyped.value.status() == "422" and "send it as FP64" in mistyped.value.message()


DEEP = b"[" * 1000 + b"1" + b"]" * 1000
BAD_REQUESTS: list[tuple[str, object | bytes, dict[str, str], int, str]] = [
    ("not json", b"{not json", {}, 400, "not valid JSON"),
    ("empty body", b"", {}, 400, "empty"),
    ("no inputs", {"inputs": []}, {}, 400, "'inputs' must be a non-empty list"),
    ("unknown datatype", iris_body(inputs=[{**fp64("f0", [1.0]), "datatype": "FLOAT"}]), {}, 400, "'FLOAT'"),
    (
        "strings in FP64",
        iris_body(inputs=[*iris_body()["inputs"][:3], fp64("f3", [0.2, "tall"])]),
        {},
        400,
        "input 'f3' is FP64 but holds 'tall' (str) at position 1",
    ),
    (
        "booleans in INT64",
        iris_body(inputs=[*iris_body()["inputs"][:3], {**fp64("f3", [True, False]), "datatype": "INT64"}]),
        {},
        400,
        "INT64 data must be integers",
    ),
    (
        "shape and data disagree",
        iris_body(inputs=[*iris_body()["inputs"][:3], fp64("f3", [0.2, 0.3, 0.4], shape=[2])]),
        {},
        400,
        "has shape [2] (2 values), but its data holds 3",
    ),
    (
        "feature tensor two wide",
        iris_body(inputs=[*iris_body()["inputs"][:3], fp64("f3", [0.2, 0.3, 0.4, 0.5], shape=[2, 2])]),
        {},
        400,
        "a feature tensor is [N] or [N, 1]",
    ),
    (
        "row counts disagree",
        iris_body(inputs=[*iris_body()["inputs"][:3], fp64("f3", [0.2, 0.3, 0.4])]),
        {},
        400,
        "input 'f3' has 3 rows, but input 'f0' has 2",
    ),
    ("missing feature", iris_body(inputs=iris_body()["inputs"][1:]), {}, 422, "input tensor ['f0'] missing"),
    (
        "matrix of the wrong width",
        {"inputs": [fp64("x", [1.0, 2.0, 3.0], shape=[1, 3])]},
        {},
        400,
        "takes one [N, 4] FP32/FP64 tensor",
    ),
    (
        "binary header longer than the body",
        iris_body(),
        {"Inference-Header-Content-Length": "100000"},
        400,
        "but the body has only",
    ),
    ("binary header not a number", iris_body(), {"Inference-Header-Content-Length": "ten"}, 400, "byte count"),
    (
        "null in a required feature",
        iris_body(inputs=[fp64("f0", [1.0, None]), *iris_body()["inputs"][1:]]),
        {},
        422,
        "row 1: feature 'f0' is missing (null)",
    ),
    ("rows over the limit", iris_body(101), {}, 413, "101 rows, over the limit of 100"),
    (
        "an extra tensor with other rows",
        iris_body(inputs=[*iris_body()["inputs"], fp64("extra", [1.0] * 5)]),
        {},
        400,
        "input 'extra' has 5 rows, but input 'f0' has 2",
    ),
    (
        "data nested a thousand lists deep",
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [%b, 2, 3, 4]}]}' % DEEP,
        {},
        400,
        "input 'x' nests its data deeper than its shape [1, 4]",
    ),
    ("body over the limit", b'{"inputs": [' + b" " * 70_000 + b"]}", {}, 413, "over the limit of 64000"),
]


def test_bad_requests_get_the_protocol_error_body_and_the_documented_status(served: str) -> None:
    for case, body, headers, status, fragment in BAD_REQUESTS:
        response = infer_raw(served, "iris", body, **headers)
        assert response.status_code == status, (case, response.text)
        assert fragment in error_of(response), (case, response.text)
    versioned = httpx.post(f"{served}/v2/models/iris/versions/2/infer", json=iris_body(), timeout=10)
    assert versioned.status_code == 404 and "not version '2'" in error_of(versioned)


def test_extra_tensors_are_ignored_unless_the_endpoint_is_strict(served: str) -> None:
    frame, _ = churn_frame()
    coupon = tensor("coupon", np.array(["SPRING"] * 3, dtype=object), "BYTES")
    client = client_for(served)
    lenient = client.infer("churn", [*churn_tensors(frame.head(3)), coupon], outputs=wanted("predictions"))
    np.testing.assert_array_equal(lenient.as_numpy("predictions"), churn_pipeline().predict(frame.head(3)))
    with pytest.raises(InferenceServerException) as strict:
        client.infer("churn-strict", [*churn_tensors(frame.head(3)), coupon], outputs=wanted("predictions"))
    assert strict.value.status() == "422" and "unexpected feature ['coupon']" in strict.value.message()


def test_v2_traffic_is_counted_in_metrics_and_documented(served: str) -> None:
    for _ in range(3):
        assert infer_raw(served, "iris", iris_body()).status_code == 200
    assert infer_raw(served, "iris", {"inputs": []}).status_code == 400
    text = httpx.get(f"{served}/metrics").text
    assert 'shipyard_requests_total{endpoint="iris",status="200",version="iris:1"} 3.0' in text
    assert 'shipyard_requests_total{endpoint="iris",status="400",version="none"} 1.0' in text
    assert 'shipyard_predicted_rows_total{endpoint="iris",version="iris:1"} 6.0' in text
    spec = httpx.get(f"{served}/openapi.json").json()
    infer = spec["paths"]["/v2/models/{model_name}/infer"]["post"]
    schema = infer["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["inputs"] and "datatype" in schema["properties"]["inputs"]["items"]["properties"]
    assert {"/v2", "/v2/health/ready", "/v2/models/{model_name}/versions/{model_version}/infer"} <= set(spec["paths"])


def test_a_model_that_raises_is_a_generic_500_naming_only_the_request_id(
    fast_settings: Settings, workspace: Workspace
) -> None:
    sample = pd.DataFrame({"x": [1.0, 2.0]})
    workspace.registry.register(RaisesOnNegative(), name="fragile", sample_input=sample, trusted=True)
    workspace.endpoints.create("fragile", model="fragile:1")
    with running_server(fast_settings, workspace) as url:
        ok = infer_raw(url, "fragile", {"inputs": [fp64("x", [2.0])]})
        assert ok.json()["outputs"][0]["data"] == [4.0]
        failed = infer_raw(url, "fragile", {"inputs": [fp64("x", [-1.0])]}, **{"X-Request-ID": "req-42"})
        assert failed.status_code == 500
        message = error_of(failed)
        assert "req-42" in message and "negative" not in failed.text and "Traceback" not in failed.text
        metrics = httpx.get(f"{url}/metrics").text
        assert 'shipyard_model_errors_total{endpoint="fragile",version="fragile:1"} 1.0' in metrics


def test_an_endpoint_without_a_loaded_model_is_not_ready(fast_settings: Settings, workspace: Workspace) -> None:
    x, _, model = iris()
    version = workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    path = Path(workspace.artifacts.location(version.sha256))
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with running_server(fast_settings, workspace, ready=False) as url:
        deadline = time.monotonic() + 20
        while "iris" not in httpx.get(f"{url}/readyz").json().get("not_ready", {}) and time.monotonic() < deadline:
            time.sleep(0.05)
        client = client_for(url)
        assert client.is_server_live() and not client.is_server_ready()
        assert httpx.get(f"{url}/v2/health/ready").status_code == 503
        assert not client.is_model_ready("iris")
        refused = infer_raw(url, "iris", iris_body())
        assert refused.status_code == 503 and "no loaded model" in error_of(refused)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(-1e300, 1e300) | st.text(max_size=4)
EXPECTED = {"tenure_months": "INT64", "monthly_charges": "FP64", "plan": "BYTES", "region": "BYTES"}
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=8)
TYPED = {
    "INT64": st.integers(-5, 80),
    "FP64": st.floats(-1e3, 1e3),
    "BYTES": st.sampled_from(["basic", "plus", "north", "x"]),
}


@st.composite
def churn_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Well-formed tensors for the churn model, then at most one thing about one of them gone wrong."""
    rows = draw(st.integers(1, 4))
    inputs: list[dict[str, Any]] = [
        {
            "name": name,
            "shape": [rows, 1],
            "datatype": kind,
            "data": draw(st.lists(TYPED[kind], min_size=rows, max_size=rows)),
        }
        for name, kind in EXPECTED.items()
    ]
    victim = inputs[draw(st.integers(0, len(inputs) - 1))]
    mutation = draw(st.sampled_from(["none", "drop", "datatype", "values", "shape", "rows", "extra", "matrix"]))
    if mutation == "drop":
        inputs.remove(victim)
    elif mutation == "datatype":
        victim["datatype"] = draw(st.sampled_from(DATATYPES))
    elif mutation == "values":
        victim["data"] = draw(st.lists(SCALARS, min_size=rows, max_size=rows) | JSON_VALUES)
    elif mutation == "shape":
        victim["shape"] = draw(st.lists(st.integers(0, 5), max_size=3))
    elif mutation == "rows":
        count = draw(st.integers(0, 5))
        victim["shape"] = [count]
        victim["data"] = draw(st.lists(TYPED[victim["datatype"]], min_size=count, max_size=count))
    elif mutation == "extra":
        inputs.append({"name": "coupon", "shape": [rows], "datatype": "BYTES", "data": ["x"] * rows})
    elif mutation == "matrix":
        inputs = [{"name": "matrix", "shape": [rows, 4], "datatype": "FP64", "data": [1.0] * rows * 4}]
    return {"inputs": inputs}


def test_generated_tensors_never_cause_a_server_error(served: str) -> None:
    seen: set[int] = set()
    with httpx.Client(base_url=served, timeout=10) as client:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(churn_bodies())
        def check(body: dict[str, Any]) -> None:
            response = client.post("/v2/models/churn/infer", json=body)
            assert response.status_code < 500, f"{body!r} -> {response.status_code}: {response.text}"
            if response.status_code >= 400:
                error_of(response)
            seen.add(response.status_code)

        check()
    assert {200, 400} <= seen


def test_tritonclient_works_unchanged_with_its_default_binary_tensors(served: str) -> None:
    """tritonclient sends binary input tensors and asks for binary outputs unless told otherwise."""
    x, _, model = iris()
    client = client_for(served)
    inputs = []
    for i, name in enumerate(FEATURES):
        tensor_in = httpclient.InferInput(name, [5, 1], "FP64")
        tensor_in.set_data_from_numpy(x[:5, [i]])  # binary_data=True is the default
        inputs.append(tensor_in)
    result = client.infer("iris", inputs)  # no outputs named: every output comes back binary
    np.testing.assert_array_equal(result.as_numpy("predictions"), model.predict(x[:5]))
    np.testing.assert_allclose(result.as_numpy("probabilities"), model.predict_proba(x[:5]))
    matrix = httpclient.InferInput("input", [5, 4], "FP32")
    matrix.set_data_from_numpy(x[:5].astype(np.float32))
    mixed = client.infer(
        "iris",
        [matrix],
        outputs=[
            httpclient.InferRequestedOutput("predictions"),
            httpclient.InferRequestedOutput("probabilities", binary_data=False),
        ],
    )
    np.testing.assert_array_equal(mixed.as_numpy("predictions"), model.predict(x[:5].astype(np.float32)))
    assert mixed.as_numpy("probabilities").shape == (5, 3)


def test_binary_string_tensors_and_string_labels_round_trip(served: str) -> None:
    frame, _ = churn_frame()
    rows = frame.head(6)
    client = client_for(served)
    inputs = []
    for name, datatype in (
        ("tenure_months", "INT64"),
        ("monthly_charges", "FP64"),
        ("plan", "BYTES"),
        ("region", "BYTES"),
    ):
        values = rows[name].to_numpy()
        values = (
            values.astype(object)
            if datatype == "BYTES"
            else values.astype(np.int64 if datatype == "INT64" else np.float64)
        )
        tensor_in = httpclient.InferInput(name, [len(values)], datatype)
        tensor_in.set_data_from_numpy(values)
        inputs.append(tensor_in)
    result = client.infer("churn", inputs)
    np.testing.assert_array_equal(result.as_numpy("predictions"), churn_pipeline().predict(rows))


def test_truncated_binary_data_is_a_400(served: str) -> None:
    header = (
        b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "parameters": {"binary_data_size": 32}}]}'
    )
    body = header + np.ones(3, dtype="<f8").tobytes()
    response = httpx.post(
        f"{served}/v2/models/iris/infer", content=body, headers={"Inference-Header-Content-Length": str(len(header))}
    )
    assert response.status_code == 400 and "declares 32 bytes" in response.json()["error"]
    leftover = header + np.ones(5, dtype="<f8").tobytes()
    response = httpx.post(
        f"{served}/v2/models/iris/infer",
        content=leftover,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 400 and "no input claims" in response.json()["error"]


def test_unknown_v2_paths_answer_in_the_protocol_error_shape(served: str) -> None:
    response = httpx.get(f"{served}/v2/no/such/thing")
    assert response.status_code == 404 and isinstance(response.json()["error"], str)


def binary_matrix(values: np.ndarray, datatype: str) -> tuple[bytes, dict[str, str]]:
    """One [N, 4] binary tensor for iris, as tritonclient sends it: a JSON header, then the raw bytes."""
    raw = values.astype("<f4" if datatype == "FP32" else "<f8").tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(values.shape),
                    "datatype": datatype,
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    return header + raw, {"Inference-Header-Content-Length": str(len(header))}


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_binary_infinity_is_a_422_naming_the_input_and_never_reaches_the_model(served: str, datatype: str) -> None:
    x, _, _ = iris()
    batch = x[:3].copy()
    for value in (np.inf, -np.inf):
        batch[1, 2] = value
        body, headers = binary_matrix(batch, datatype)
        response = infer_raw(served, "iris", body, **headers)
        assert response.status_code == 422, response.text
        assert error_of(response).startswith(
            f"input 'input' holds {value} at position 6; {datatype} values must be finite"
        )
    batch[1, 2] = np.nan  # a missing value, as a JSON null would be: iris allows none
    body, headers = binary_matrix(batch, datatype)
    missing = infer_raw(served, "iris", body, **headers)
    assert missing.status_code == 422 and "row 1: feature 'f2' is missing (null)" in error_of(missing)
    assert 'shipyard_model_errors_total{endpoint="iris"' not in httpx.get(f"{served}/metrics").text
