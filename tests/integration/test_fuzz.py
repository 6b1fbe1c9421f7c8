"""Fuzzing a real server: no generated input may cause a 5xx.

Schemathesis generates requests for every operation in /openapi.json; Hypothesis generates arbitrary
JSON bodies (wrong types, nulls, nesting, unknown features) for the predict routes of real models.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.config import Settings
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
