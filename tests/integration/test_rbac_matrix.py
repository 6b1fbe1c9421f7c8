"""The RBAC matrix: every route in ``/openapi.json`` x every kind of caller, against a real server.

What each role may do is written here, from the product's contract (viewer reads; predictor predicts, sends
feedback and V2 infers; operator runs endpoints and rollouts and reads; admin does everything), not read
from ``serving.auth.RULES``: a rule that grants too much or too little fails this test, and so does a route
that appears in the API without an entry here or without a rule there.

Auth's verdict is all that is judged: 401 or 403 is a refusal; any other status (200, 404, 409, 422...) means
auth let the caller through. A 5xx is a bug wherever it comes from, so it fails too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from shipyard.config import Settings
from shipyard.serving.auth import RULES
from shipyard.store.tables import api_keys
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import ServerUrl, running_server

VIEWER, PREDICTOR, OPERATOR, ADMIN = "viewer", "predictor", "operator", "admin"
READ = frozenset({VIEWER, OPERATOR, ADMIN})
PREDICT = frozenset({PREDICTOR, ADMIN})
OPERATE = frozenset({OPERATOR, ADMIN})
ADMIN_ONLY = frozenset({ADMIN})
READ_OR_PREDICT = READ | PREDICT  # V2 metadata: a V2 client that only infers must still read what it calls


@dataclass(frozen=True, slots=True)
class Expect:
    """Who may call a route. ``scope``: what the route names, so a key limited to other names is refused.

    ``endpoint`` / ``model``: the route acts on one endpoint or model; ``global``: it acts on everything (create
    an endpoint, the audit trail), so only a key limited to nothing may call it; ``none``: a listing, which a
    scoped key may call.
    """

    roles: frozenset[str]
    scope: str = "none"
    open: bool = False


OPEN = Expect(frozenset(), open=True)

EXPECTED: dict[tuple[str, str], Expect] = {
    # probes: open
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/v2/health/live"): OPEN,
    ("GET", "/v2/health/ready"): OPEN,
    # the data plane
    ("POST", "/v1/endpoints/{endpoint}/predict"): Expect(PREDICT, "endpoint"),
    ("POST", "/v1/endpoints/{endpoint}/feedback"): Expect(PREDICT, "endpoint"),
    ("PUT", "/v1/endpoints/{endpoint}/feedback"): Expect(PREDICT, "endpoint"),
    ("GET", "/v2"): Expect(READ_OR_PREDICT),
    ("GET", "/v2/models/{model_name}"): Expect(READ_OR_PREDICT, "endpoint"),
    ("GET", "/v2/models/{model_name}/ready"): Expect(READ_OR_PREDICT, "endpoint"),
    ("POST", "/v2/models/{model_name}/infer"): Expect(PREDICT, "endpoint"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}"): Expect(READ_OR_PREDICT, "endpoint"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}/ready"): Expect(READ_OR_PREDICT, "endpoint"),
    ("POST", "/v2/models/{model_name}/versions/{model_version}/infer"): Expect(PREDICT, "endpoint"),
    # endpoints and the registry
    ("GET", "/v1/endpoints"): Expect(READ),
    ("POST", "/v1/endpoints"): Expect(OPERATE, "global"),
    ("GET", "/v1/endpoints/{name}"): Expect(READ, "endpoint"),
    ("PUT", "/v1/endpoints/{name}"): Expect(OPERATE, "endpoint"),
    ("DELETE", "/v1/endpoints/{name}"): Expect(OPERATE, "endpoint"),
    ("GET", "/v1/models"): Expect(READ),
    ("GET", "/v1/models/{ref}"): Expect(READ, "model"),
    ("POST", "/v1/models/{ref}/approve"): Expect(ADMIN_ONLY, "model"),
    ("GET", "/v1/models/{name}/versions"): Expect(READ, "model"),
    ("GET", "/v1/models/{name}/versions/{version}/validations"): Expect(READ, "model"),
    ("POST", "/v1/models/{name}/versions"): Expect(OPERATE, "model"),  # code (a pyfunc, a trusted pickle): admin
    ("PUT", "/v1/models/{name}/aliases/{alias}"): Expect(OPERATE, "model"),
    ("DELETE", "/v1/models/{name}/aliases/{alias}"): Expect(OPERATE, "model"),
    ("POST", "/v1/models/{ref}/archive"): Expect(OPERATE, "model"),
    ("POST", "/v1/keys"): Expect(ADMIN_ONLY, "global"),
    ("GET", "/v1/keys"): Expect(ADMIN_ONLY, "global"),
    ("DELETE", "/v1/keys/{name}"): Expect(ADMIN_ONLY, "global"),
    ("POST", "/v1/channels"): Expect(ADMIN_ONLY, "global"),
    ("GET", "/v1/channels"): Expect(ADMIN_ONLY, "global"),
    ("DELETE", "/v1/channels/{channel}"): Expect(ADMIN_ONLY, "global"),
    ("POST", "/v1/channels/{channel}/test"): Expect(OPERATE, "global"),
    # rollouts and monitoring
    ("POST", "/v1/endpoints/{endpoint}/rollouts"): Expect(OPERATE, "endpoint"),
    ("GET", "/v1/endpoints/{endpoint}/rollouts/current"): Expect(READ, "endpoint"),
    ("POST", "/v1/endpoints/{endpoint}/rollouts/current/promote"): Expect(OPERATE, "endpoint"),
    ("POST", "/v1/endpoints/{endpoint}/rollouts/current/pause"): Expect(OPERATE, "endpoint"),
    ("POST", "/v1/endpoints/{endpoint}/rollouts/current/resume"): Expect(OPERATE, "endpoint"),
    ("POST", "/v1/endpoints/{endpoint}/rollouts/current/abort"): Expect(OPERATE, "endpoint"),
    ("GET", "/v1/endpoints/{endpoint}/monitoring"): Expect(READ, "endpoint"),
    # retraining jobs
    ("POST", "/v1/endpoints/{endpoint}/retrain"): Expect(OPERATE, "endpoint"),
    ("GET", "/v1/jobs"): Expect(READ),
    ("GET", "/v1/jobs/{job_id}"): Expect(READ),
    ("POST", "/v1/jobs/{job_id}/cancel"): Expect(OPERATE, "global"),
    # alert rules
    ("GET", "/v1/alerts"): Expect(READ),
    ("POST", "/v1/alerts"): Expect(OPERATE, "global"),
    ("POST", "/v1/alerts/apply"): Expect(OPERATE, "global"),
    ("GET", "/v1/alerts/{name}"): Expect(READ),
    ("DELETE", "/v1/alerts/{name}"): Expect(OPERATE, "global"),
    ("GET", "/v1/alerts/{name}/history"): Expect(READ),
    ("GET", "/v1/alerts/{name}/test"): Expect(READ),
    ("POST", "/v1/alerts/{name}/silence"): Expect(OPERATE, "global"),
    ("POST", "/v1/alerts/{name}/unsilence"): Expect(OPERATE, "global"),
    ("POST", "/v1/alerts/{name}/ack"): Expect(OPERATE, "global"),
    # governance: the audit trail, request tracing
    ("GET", "/v1/audit"): Expect(ADMIN_ONLY, "global"),
    ("GET", "/v1/audit/verify"): Expect(ADMIN_ONLY, "global"),
    ("GET", "/v1/requests/{request_id}"): Expect(READ, "endpoint"),
}
"""Every route the API describes. ``/metrics`` is added per the ``metrics_public`` setting (see ``expected``)."""

ENDPOINT, MODEL, REQUEST_ID = "iris", "iris", "matrix-request"
PATH_VALUES = {
    "endpoint": ENDPOINT,
    "name": ENDPOINT,
    "model_name": ENDPOINT,  # V2 calls an endpoint a model
    "ref": f"{MODEL}:1",
    "model_version": "1",
    "version": "1",
    "request_id": REQUEST_ID,
    "alias": "matrix",
    "job_id": "matrix-job",
    "channel": "matrix-channel",
}
QUERY_VALUES = {"endpoint": ENDPOINT}
"""Optional query parameters that name what a route acts on: sent, so a scoped key's verdict is about iris."""
ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}
V2_BODY = {"inputs": [{"name": f, "shape": [1], "datatype": "FP64", "data": [v]} for f, v in ROW.items()]}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/endpoints/{endpoint}/predict"): {"instances": [ROW]},
    ("POST", "/v1/endpoints/{endpoint}/feedback"): {"request_id": REQUEST_ID, "label": 0},
    ("PUT", "/v1/endpoints/{endpoint}/feedback"): {"request_id": REQUEST_ID, "label": 0},
    ("POST", "/v2/models/{model_name}/infer"): V2_BODY,
    ("POST", "/v2/models/{model_name}/versions/{model_version}/infer"): V2_BODY,
    ("POST", "/v1/endpoints"): {"name": "created-by-matrix", "model": f"{MODEL}:1"},
    ("PUT", "/v1/endpoints/{name}"): {"model": f"{MODEL}:1"},
    ("POST", "/v1/models/{ref}/approve"): {"reason": "rbac matrix"},
    ("PUT", "/v1/models/{name}/aliases/{alias}"): {"version": 1},
    ("POST", "/v1/endpoints/{endpoint}/rollouts"): {
        "to": f"{MODEL}:2",
        "strategy": "canary",
        "steps": "50,100",
        "interval_s": "1h",
    },
    ("POST", "/v1/endpoints/{endpoint}/rollouts/current/abort"): {"reason": "rbac matrix"},
}
"""Valid bodies where it is easy; anything else gets ``{}`` (a 422 after auth is still 'let through')."""

CALLERS = ("none", VIEWER, PREDICTOR, OPERATOR, ADMIN, "wrong-scope", "right-scope", "revoked", "expired")
"""The scoped, revoked and expired keys are admin keys: whatever refuses them is the scope or the key's state."""


def expected(settings: Settings) -> dict[tuple[str, str], Expect]:
    metrics = OPEN if settings.metrics_public else Expect(READ)
    return {**EXPECTED, ("GET", "/metrics"): metrics}


def verdict(expect: Expect, caller: str) -> str:
    """What auth must answer: ``401``, ``403``, or ``through``."""
    if expect.open:
        return "through"
    if caller in ("none", "revoked", "expired"):
        return "401"
    if caller == "wrong-scope":
        return "403" if expect.scope in ("endpoint", "model", "global") else "through"
    if caller == "right-scope":
        return "403" if expect.scope == "global" else "through"
    return "through" if caller in expect.roles else "403"


def order(method: str, path: str) -> int:
    """Reads first, changes next, then what destroys the objects the others need (abort, delete)."""
    if method == "DELETE":
        return 3
    if path.endswith("/abort"):
        return 2
    return 0 if method == "GET" else 1


@pytest.fixture
def matrix_server(settings: Settings, workspace: Workspace) -> Iterator[tuple[ServerUrl, dict[str, str | None]]]:
    x, y, model = iris()
    workspace.registry.register(model, name=MODEL, sample_input=x[:20], training_data=x, training_target=y)
    workspace.registry.register(LogisticRegression(max_iter=500, C=0.05).fit(x, y), name=MODEL, sample_input=x[:20])
    workspace.endpoints.create(ENDPOINT, model=f"{MODEL}:1")
    keys = workspace.keys
    secrets: dict[str, str | None] = {"none": None}
    for role in (VIEWER, PREDICTOR, OPERATOR, ADMIN):
        secrets[role] = keys.create(f"matrix-{role}", role=role)[1]
    secrets["wrong-scope"] = keys.create("matrix-other", role=ADMIN, endpoints=["other"], models=["other"])[1]
    secrets["right-scope"] = keys.create("matrix-iris", role=ADMIN, endpoints=[ENDPOINT], models=[MODEL])[1]
    secrets["revoked"] = keys.create("matrix-revoked", role=ADMIN)[1]
    keys.revoke("matrix-revoked")
    secrets["expired"] = keys.create("matrix-expired", role=ADMIN, expires_in=timedelta(days=1))[1]
    with workspace.db.write() as conn:  # expired an hour ago: written through the store, no waiting
        conn.execute(
            sa.update(api_keys)
            .where(api_keys.c.name == "matrix-expired")
            .values(expires_at=datetime.now(UTC) - timedelta(hours=1))
        )
    # Brute-force limiting off: the revoked and expired keys fail on every route, far over a minute's allowance,
    # and this test judges each route's verdict, not the limiter (tests/integration/test_rate_limits.py does).
    with running_server(settings.model_copy(update={"auth_failures_per_minute": 0}), workspace) as url:
        traced = httpx.post(
            f"{url}/v1/endpoints/{ENDPOINT}/predict",
            json={"instances": [ROW]},
            headers={"authorization": f"Bearer {secrets[ADMIN]}", "x-request-id": REQUEST_ID},
        )
        assert traced.status_code == 200, traced.text
        yield url, secrets


def openapi_routes(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    described = httpx.get(f"{url}/openapi.json", timeout=10)
    assert described.status_code == 200, "the API description must be open"
    return {
        (method.upper(), path): operation
        for path, methods in described.json()["paths"].items()
        for method, operation in methods.items()
    }


def test_every_route_has_an_expected_entry_here_and_a_rule_in_the_server(
    settings: Settings, matrix_server: tuple[ServerUrl, dict[str, str | None]]
) -> None:
    url, _ = matrix_server
    routes = set(openapi_routes(url))
    table = set(expected(settings))
    ruled = {(rule.method, rule.path) for rule in RULES}
    assert sorted(routes - table) == [], "routes without an entry in this test's EXPECTED table"
    assert sorted(routes - ruled) == [], "routes without a Rule in serving/auth.py RULES"
    assert sorted(table - routes) == [], "EXPECTED names routes the API no longer has"


def test_every_route_answers_every_caller_as_the_roles_say(
    settings: Settings, matrix_server: tuple[ServerUrl, dict[str, str | None]]
) -> None:
    url, secrets = matrix_server
    routes = openapi_routes(url)
    table = expected(settings)
    calls = sorted(
        ((method, path, caller) for (method, path) in routes if (method, path) in table for caller in CALLERS),
        key=lambda c: (order(c[0], c[1]), c[1], c[0], CALLERS.index(c[2])),
    )
    wrong: list[str] = []
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as http:
        for method, path, caller in calls:
            operation = routes[(method, path)]
            concrete = path
            for name in re.findall(r"\{(\w+)\}", path):  # from the template: not every route declares them
                assert name in PATH_VALUES, f"{method} {path}: add a value for path parameter {name!r} to PATH_VALUES"
                concrete = concrete.replace(f"{{{name}}}", PATH_VALUES[name])
            query = {
                p["name"]: QUERY_VALUES[p["name"]]
                for p in operation.get("parameters", ())
                if p["in"] == "query" and p["name"] in QUERY_VALUES
            }
            # Mutations carry a JSON body and the client header, so no cross-site guard answers before auth.
            headers = {"x-shipyard-client": "rbac-matrix"}
            if secrets[caller] is not None:
                headers["authorization"] = f"Bearer {secrets[caller]}"
            body = BODIES.get((method, path), {}) if method in ("POST", "PUT", "PATCH") else None
            response = http.request(method, concrete, params=query, json=body, headers=headers)
            want = verdict(table[(method, path)], caller)
            got = str(response.status_code) if response.status_code in (401, 403) else "through"
            if response.status_code >= 500 or got != want:
                wrong.append(f"{method} {concrete} as {caller}: expected {want}, got {response.status_code}")
            elif got == "401" and "bearer" not in response.headers.get("www-authenticate", "").lower():
                wrong.append(f"{method} {concrete} as {caller}: a 401 without WWW-Authenticate: Bearer")
    elapsed_s = time.monotonic() - started
    assert wrong == [], f"{len(wrong)} of {len(calls)} calls answered wrongly:\n" + "\n".join(wrong)
    assert len(calls) >= len(table) * len(CALLERS)
    assert elapsed_s < 60, f"{len(calls)} calls took {elapsed_s:.1f}s"
