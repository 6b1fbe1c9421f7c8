"""Fuzzing a real server: no generated input may cause a 5xx.

Schemathesis generates requests for every operation in /openapi.json; Hypothesis generates arbitrary
JSON bodies (wrong types, nulls, nesting, unknown features) for the predict routes of real models, and
hostile JSON text (deep nesting, huge numbers, NaN/inf, unequal columns, unicode, odd types) and binary
tensors of any floats for the REST and Open Inference Protocol routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.config import Settings
from shipyard.serving.v2_tensors import DATATYPES
from shipyard.workspace import Workspace
from tests.models import churn_frame, churn_pipeline, iris
from tests.serving_support import running_server

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    config = Settings(home=home, poll_interval_s=0.5, max_request_rows=50, max_request_bytes=100_000)
    workspace = Workspace(config)
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    frame, _ = churn_frame()
    workspace.registry.register(churn_pipeline(), name="churn", sample_input=frame.head(20))
    workspace.endpoints.create("iris", model="iris:1")
    workspace.endpoints.create("churn", model="churn:1", strict=True)
    with running_server(config, workspace) as url:
        yield url
    workspace.close()


def test_no_operation_in_the_openapi_schema_gives_a_server_error(server_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    failures: list[str] = []
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=server_url, timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        check()
    assert failures == []


SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
FEATURES = st.sampled_from(["f0", "f1", "f2", "f3", "plan", "region", "tenure_months", "monthly_charges", "x"])
ROWS = st.lists(st.dictionaries(FEATURES, SCALARS | JSON, max_size=6), max_size=4)
COLUMNS = st.dictionaries(FEATURES, st.lists(SCALARS, max_size=3) | SCALARS, max_size=5)
BODIES = st.one_of(JSON, st.fixed_dictionaries({"instances": ROWS}), st.fixed_dictionaries({"inputs": COLUMNS}))


@pytest.mark.parametrize("endpoint", ["iris", "churn"])
def test_arbitrary_json_bodies_never_cause_a_server_error(server_url: str, endpoint: str) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as client:

        @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(BODIES)
        def check(body: object) -> None:
            response = client.post(f"/v1/endpoints/{endpoint}/predict", json=body)
            assert response.status_code < 500, f"{body!r} -> {response.status_code}: {response.text}"

        check()


# -- hostile bodies as raw JSON text: what Python values cannot express -------------------------------

# JSON that orjson refuses (NaN, Infinity, 1e400, lone surrogates) or takes with a twist (huge integers
# become floats), odd types where numbers belong, and text from beyond ASCII.
ODD_TOKENS = (
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e308", "-0.0", "5e-324",
    "123456789012345678901234567890", "18446744073709551616", "-9223372036854775809",
    '"\\ud800"', '"\\u0000"', '"日本語"', '"😀"', '"1.5"', '""',
    "true", "false", "null", "{}", "[]", '{"a": [1]}', "[null]", "[[1, 2], [3]]",
)  # fmt: skip


@st.composite
def raw_values(draw: st.DrawFn) -> str:
    """One JSON value as text: a number, a string, an odd token, or an odd token nested up to 1,100 deep."""
    kind = draw(st.sampled_from(["number", "odd", "deep", "deep", "text"]))
    if kind == "number":
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False) | st.integers()))
    if kind == "text":
        return orjson.dumps(draw(st.text(max_size=8))).decode()
    token = draw(st.sampled_from(ODD_TOKENS))
    if kind == "odd":
        return token
    # Around NumPy's 64 dimensions, Python's recursion limit of 1,000 and orjson's nesting limit of 1,024.
    depth = draw(
        st.sampled_from([64, 65, 1000, 1010, 1018, 1025]) | st.sampled_from([1000, 1010, 1018]) | st.integers(2, 1100)
    )
    return "[" * depth + token + "]" * depth if draw(st.booleans()) else '{"k": ' * depth + token + "}" * depth


# Each endpoint's features and a well-formed value for each (as JSON text, with its V2 datatype): bodies
# start well formed, so that the hostile part reaches the checks behind "is every feature there".
VALID: dict[str, dict[str, tuple[st.SearchStrategy[str], str]]] = {
    "iris": {f"f{i}": (st.floats(-10, 10).map(repr), "FP64") for i in range(4)},
    "churn": {
        "tenure_months": (st.integers(0, 72).map(str), "INT64"),
        "monthly_charges": (st.floats(0, 200).map(repr), "FP64"),
        "plan": (st.sampled_from(['"basic"', '"plus"', '"premium"']), "BYTES"),
        "region": (st.sampled_from(['"north"', '"south"', '"x"']), "BYTES"),
    },
}


def value_for(draw: st.DrawFn, endpoint: str, name: str) -> str:
    """Mostly a well-formed value; a hostile one about one time in four (or any value for an unknown name)."""
    valid = VALID[endpoint].get(name)
    if valid is None or draw(st.integers(0, 3)) == 0:
        return draw(raw_values())
    return draw(valid[0])


def names_for(draw: st.DrawFn, endpoint: str) -> list[str]:
    """The endpoint's features, sometimes one short, sometimes with an extra one."""
    names = list(VALID[endpoint])
    change = draw(st.sampled_from(["none", "none", "drop", "extra"]))
    if change == "drop":
        names.remove(draw(st.sampled_from(names)))
    elif change == "extra":
        names.append(draw(st.sampled_from(["extra", "f0", "plan", "日本"])))
    return list(dict.fromkeys(names))


@st.composite
def raw_rest_bodies(draw: st.DrawFn, endpoint: str) -> bytes:
    """Rows, or columns (sometimes of unequal lengths, or a scalar), holding hostile JSON text."""
    names = names_for(draw, endpoint)
    rows = draw(st.integers(1, 3))
    if draw(st.booleans()):
        objects = ["{" + ", ".join(f'"{n}": {value_for(draw, endpoint, n)}' for n in names) + "}" for _ in range(rows)]
        return ('{"instances": [' + ", ".join(objects) + "]}").encode()
    cols = []
    for name in names:
        shape = draw(st.sampled_from(["rows", "rows", "rows", "other", "scalar"]))
        if shape == "scalar":
            cols.append(f'"{name}": {value_for(draw, endpoint, name)}')
            continue
        length = rows if shape == "rows" else draw(st.integers(0, 5))
        cols.append(f'"{name}": [' + ", ".join(value_for(draw, endpoint, name) for _ in range(length)) + "]")
    return ('{"inputs": {' + ", ".join(cols) + "}}").encode()


@st.composite
def raw_v2_bodies(draw: st.DrawFn, endpoint: str) -> bytes:
    """One tensor per feature whose shapes, datatypes and data may disagree, holding hostile JSON text."""
    names = names_for(draw, endpoint)
    rows = draw(st.integers(1, 3))
    tensors = []
    for name in names:
        datatype = VALID[endpoint][name][1] if name in VALID[endpoint] else "BYTES"
        if draw(st.integers(0, 5)) == 0:
            datatype = draw(st.sampled_from(DATATYPES))
        shape = draw(st.sampled_from([[rows], [rows, 1]]) | st.lists(st.integers(0, 5), max_size=3) | st.just([10**20]))
        values = [value_for(draw, endpoint, name) for _ in range(draw(st.sampled_from([rows, rows, 0, 5])))]
        tensors.append(
            f'{{"name": "{name}", "shape": {shape}, "datatype": "{datatype}", "data": [{", ".join(values)}]}}'
        )
    return ('{"inputs": [' + ", ".join(tensors) + "]}").encode()


@st.composite
def binary_v2_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """One [N, 4] FP32/FP64 binary tensor (what tritonclient sends) holding any floats: NaN, ±inf, subnormals."""
    rows = draw(st.integers(1, 3))
    datatype = draw(st.sampled_from(["FP32", "FP64"]))
    width = 32 if datatype == "FP32" else 64
    values = draw(st.lists(st.floats(width=width), min_size=rows * 4, max_size=rows * 4))
    raw = np.asarray(values, dtype="<f4" if datatype == "FP32" else "<f8").tobytes()
    tensor = {"name": "input", "shape": [rows, 4], "datatype": datatype, "parameters": {"binary_data_size": len(raw)}}
    header = orjson.dumps({"inputs": [tensor]})
    return header + raw, str(len(header))


HOSTILE = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.mark.parametrize("endpoint", ["iris", "churn"])
def test_hostile_json_text_never_causes_a_server_error(server_url: str, endpoint: str) -> None:
    """Deep nesting, huge numbers, NaN/inf, unequal columns, unicode and odd types: always a 4xx or a 200."""
    seen: set[int] = set()
    with httpx.Client(base_url=server_url, timeout=30) as client:

        @HOSTILE
        @given(
            st.tuples(st.just("rest"), raw_rest_bodies(endpoint)) | st.tuples(st.just("v2"), raw_v2_bodies(endpoint))
        )
        def check(case: tuple[str, bytes]) -> None:
            route, body = case
            path = f"/v1/endpoints/{endpoint}/predict" if route == "rest" else f"/v2/models/{endpoint}/infer"
            response = client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code < 500, f"{route} {body[:300]!r} -> {response.status_code}: {response.text}"
            seen.add(response.status_code)

        check()
    assert {200, 400, 422} <= seen


def test_binary_tensors_of_any_floats_never_cause_a_server_error(server_url: str) -> None:
    seen: set[int] = set()
    with httpx.Client(base_url=server_url, timeout=30) as client:

        @HOSTILE
        @given(binary_v2_bodies())
        def check(case: tuple[bytes, str]) -> None:
            body, header_length = case
            response = client.post(
                "/v2/models/iris/infer", content=body, headers={"Inference-Header-Content-Length": header_length}
            )
            assert response.status_code < 500, f"{body[:200]!r} -> {response.status_code}: {response.text}"
            seen.add(response.status_code)

        check()
    assert {200, 422} <= seen
