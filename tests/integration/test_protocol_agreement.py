"""REST and the Open Inference Protocol answer the same fault with the same status, each in its own body.

A caller who moves from one protocol to the other, or a dashboard that counts both, must not see a fault
change its class: a body that is not the route's envelope is a 400 in both, input the signature refuses a
422 naming the feature, too much a 413, an unknown endpoint a 404, no loaded model a 503, a model that
raises a 500 naming only the request id.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.workspace import Workspace
from tests.models import iris, regression
from tests.serving_models import RaisesOnNegative
from tests.serving_support import running_server

FEATURES = ("f0", "f1", "f2", "f3")
MAX_ROWS = 100
MAX_BYTES = 64_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """iris (numeric), iris-strict, fragile (raises on negative x) and broken (its artifact tampered with)."""
    home = tmp_path_factory.mktemp("agreement")
    settings = Settings(home=home).model_copy(
        update={"poll_interval_s": 0.2, "max_request_rows": MAX_ROWS, "max_request_bytes": MAX_BYTES}
    )
    workspace = Workspace(settings)
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    workspace.endpoints.create("iris-strict", model="iris:1", strict=True)
    sample = pd.DataFrame({"x": [1.0, 2.0]})
    workspace.registry.register(RaisesOnNegative(), name="fragile", sample_input=sample, trusted=True)
    workspace.endpoints.create("fragile", model="fragile:1")
    rx, _, linear = regression()
    broken = workspace.registry.register(linear, name="broken", sample_input=rx[:20])
    workspace.endpoints.create("broken", model="broken:1")
    artifact = Path(workspace.artifacts.location(broken.sha256))
    artifact.chmod(0o644)
    artifact.write_bytes(b"tampered")
    try:
        with running_server(settings, workspace, ready=False) as url:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                ready = httpx.get(f"{url}/readyz", timeout=5).json()
                if "broken" in ready.get("not_ready", {}) and {"iris", "fragile"} <= set(ready.get("endpoints", {})):
                    break
                time.sleep(0.1)
            yield url
    finally:
        workspace.close()


def rows(n: int = 2, **changes: Any) -> list[dict[str, Any]]:
    x = iris()[0]
    out = [dict(zip(FEATURES, map(float, x[i % len(x)]), strict=True)) for i in range(n)]
    out[-1].update(changes)
    return [{k: v for k, v in row.items() if v is not ...} for row in out]


def tensors(n: int = 2, **changes: Any) -> list[dict[str, Any]]:
    """One FP64 tensor per iris feature; a change replaces a tensor (a dict) or drops it (``...``)."""
    x = iris()[0]
    out = {
        name: {"name": name, "shape": [n], "datatype": "FP64", "data": x[:n, i].tolist()}
        for i, name in enumerate(FEATURES)
    }
    for name, change in changes.items():
        if change is ...:
            del out[name]
        else:
            out[name] = change
    return list(out.values())


def json(body: Any) -> bytes:
    return orjson.dumps(body)


@dataclass(frozen=True)
class Fault:
    """One fault as each protocol's caller would send it, and the status both must answer with."""

    name: str
    status: int
    rest: bytes
    v2: bytes
    endpoint: str = "iris"
    headers: tuple[tuple[str, str], ...] = ()


FAULTS = [
    Fault("empty body", 400, b"", b""),
    Fault("invalid JSON", 400, b"{not json", b"{not json"),
    Fault("a JSON array, not an object", 400, b"[1, 2]", b"[1, 2]"),
    Fault("a JSON string, not an object", 400, b'"rows"', b'"rows"'),
    Fault("an object without the envelope", 400, b"{}", b"{}"),
    Fault("the envelope of the wrong type", 400, json({"instances": 5}), json({"inputs": 5})),
    Fault("an empty envelope", 400, json({"instances": []}), json({"inputs": []})),
    Fault(
        "features with different row counts",
        400,
        json({"inputs": {name: [1.0] * (3 if name == "f3" else 2) for name in FEATURES}}),
        json({"inputs": tensors(f3={"name": "f3", "shape": [3], "datatype": "FP64", "data": [0.1, 0.2, 0.3]})}),
    ),
    Fault(
        "a compressed body",
        400,
        gzip.compress(json({"instances": rows()})),
        gzip.compress(json({"inputs": tensors()})),
        headers=(("Content-Encoding", "gzip"),),
    ),
    Fault("a missing feature", 422, json({"instances": rows(f0=...)}), json({"inputs": tensors(f0=...)})),
    Fault(
        "text for a numeric feature",
        422,
        json({"instances": rows(f3="tall")}),
        json({"inputs": tensors(f3={"name": "f3", "shape": [2], "datatype": "BYTES", "data": ["a", "tall"]})}),
    ),
    Fault(
        "a null the signature does not allow",
        422,
        json({"instances": rows(f3=None)}),
        json({"inputs": tensors(f3={"name": "f3", "shape": [2], "datatype": "FP64", "data": [0.2, None]})}),
    ),
    Fault(
        "an extra feature on a strict endpoint",
        422,
        json({"instances": rows(coupon=1.0)}),
        json({"inputs": [*tensors(), {"name": "coupon", "shape": [2], "datatype": "FP64", "data": [1.0, 1.0]}]}),
        endpoint="iris-strict",
    ),
    Fault("rows over the limit", 413, json({"instances": rows(MAX_ROWS + 1)}), json({"inputs": tensors(MAX_ROWS + 1)})),
    Fault(
        "a body over the byte limit",
        413,
        b'{"instances": [' + b" " * (MAX_BYTES + 1) + b"]}",
        b'{"inputs": [' + b" " * (MAX_BYTES + 1) + b"]}",
    ),
    Fault("an unknown endpoint, whatever the body", 404, b"{not json", b"{not json", endpoint="fraud"),
    Fault(
        "an endpoint with no loaded model",
        503,
        json({"instances": rows()}),
        json({"inputs": tensors()}),
        endpoint="broken",
    ),
    Fault(
        "a model that raises",
        500,
        json({"instances": [{"x": -1.0}]}),
        json({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [-1.0]}]}),
        endpoint="fragile",
    ),
]


def send(url: str, fault: Fault) -> tuple[httpx.Response, httpx.Response]:
    headers = {"Content-Type": "application/json", **dict(fault.headers)}
    rest = httpx.post(f"{url}/v1/endpoints/{fault.endpoint}/predict", content=fault.rest, headers=headers, timeout=30)
    v2 = httpx.post(f"{url}/v2/models/{fault.endpoint}/infer", content=fault.v2, headers=headers, timeout=30)
    return rest, v2


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_rest_and_v2_answer_the_same_fault_with_the_same_status(server: str, fault: Fault) -> None:
    rest, v2 = send(server, fault)
    assert (rest.status_code, v2.status_code) == (fault.status, fault.status), (rest.text, v2.text)
    rest_error = rest.json()["error"]
    assert (
        set(rest_error) == {"code", "message", "request_id"}
        and rest_error["request_id"] == rest.headers["x-request-id"]
    )
    v2_body = v2.json()
    assert set(v2_body) == {"error"} and isinstance(v2_body["error"], str) and v2.headers["x-request-id"]
    if fault.status == 500:  # neither says what went wrong, only where to look
        assert "negative" not in rest.text and "negative" not in v2.text
        assert v2.headers["x-request-id"] in v2_body["error"]


def test_each_fault_is_counted_under_the_same_status_for_both_protocols(server: str) -> None:
    """The agreement reaches /metrics too: a fault's status label is the same whichever protocol sent it."""
    fault = next(f for f in FAULTS if f.name == "a JSON array, not an object")
    before = _count(server, status="400")
    rest, v2 = send(server, fault)
    assert rest.status_code == v2.status_code == 400
    assert _count(server, status="400") == before + 2


def _count(url: str, *, status: str) -> float:
    line = f'shipyard_requests_total{{endpoint="iris",status="{status}",version="none"}} '
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return next((float(row.removeprefix(line)) for row in text.splitlines() if row.startswith(line)), 0.0)
