"""The data plane without HTTP, as KServe tests its own: routing, validation, where a model runs, evidence.

Each test builds the plane the way ``create_app`` does (metrics, a model cache over a real registry, the
refresher installing the routing table) with small real models, and sends requests through the same
``observed`` bracket the REST and V2 routes use.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from shipyard.core.endpoints import Arm
from shipyard.errors import EndpointNotFoundError, PayloadTooLargeError, PredictionError, SignatureError
from shipyard.serving.dataplane import DataPlane, PredictOutcome
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.models import ModelCache
from shipyard.serving.refresher import Refresher
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_models import Doubler
from tests.unit.serving.thread_models import ReportsItsThread

FEATURES = ("f0", "f1", "f2", "f3")
SAMPLE = pd.DataFrame({"x": [0.101, 0.202, 0.303, 0.404]})


class Plane:
    """A data plane over a workspace, wired as a server wires it, and a way to send it requests."""

    def __init__(self, workspace: Workspace, *, max_rows: int = 100) -> None:
        self.metrics = ServingMetrics()
        self.dataplane = DataPlane(self.metrics, max_rows=max_rows)
        self.refresher = Refresher(
            workspace.endpoints, ModelCache(workspace.registry, self.metrics), self.dataplane, workspace.rollouts
        )
        self.refresher.sync_once()

    async def send(self, endpoint: str, payload: Any, *, rows: int, key: str | None = None) -> PredictOutcome:
        """One request through the bracket, as a protocol route sends it; a refusal is re-raised after counting."""
        with self.dataplane.observed(endpoint, f"req-{key}") as call:
            try:
                call.route()
                return await call.predict(payload, rows=rows, routing_key=key)
            except Exception as exc:
                call.fail(exc)
                raise

    def requests(self, endpoint: str, version: str, status: int) -> float:
        labels = {"endpoint": endpoint, "version": version, "status": str(status)}
        return self.metrics.registry.get_sample_value("shipyard_requests_total", labels) or 0.0


@pytest.fixture
def iris_plane(sqlite_workspace: Workspace) -> Plane:
    x, _, model = iris()
    sqlite_workspace.registry.register(model, name="iris", sample_input=x[:20])
    sqlite_workspace.endpoints.create("iris", model="iris:1")
    return Plane(sqlite_workspace, max_rows=50)


@pytest.fixture
def canary(sqlite_workspace: Workspace) -> Iterator[Plane]:
    """``svc`` on svc:1, with svc:2 taking half the routing keys; svc:2 fails on inputs whose 1000x is 7-divisible."""
    sqlite_workspace.registry.register(Doubler(), name="svc", sample_input=SAMPLE, trusted=True)
    sqlite_workspace.registry.register(Doubler(fail_one_in=7), name="svc", sample_input=SAMPLE, trusted=True)
    sqlite_workspace.endpoints.create("svc", model="svc:1")
    sqlite_workspace.rollouts.start("svc", to="svc:2", strategy="canary", steps="50,100")
    plane = Plane(sqlite_workspace)
    assert plane.dataplane.routes["svc"].rollout is not None
    yield plane


def iris_rows(n: int) -> list[dict[str, Any]]:
    x = iris()[0]
    return [dict(zip(FEATURES, map(float, x[i]), strict=True)) for i in range(n)]


# -- routing ----------------------------------------------------------------------------------


def test_without_a_rollout_every_request_goes_to_the_stable_version(iris_plane: Plane) -> None:
    async def traffic() -> list[PredictOutcome]:
        return [await iris_plane.send("iris", iris_rows(1), rows=1, key=f"user-{i}") for i in range(40)]

    outcomes = asyncio.run(traffic())
    assert {(o.served.ref, o.arm) for o in outcomes} == {("iris:1", Arm.STABLE)}
    assert iris_plane.requests("iris", "iris:1", 200) == 40


def test_a_canary_splits_routing_keys_by_its_weight_and_pins_each_key_to_one_arm(canary: Plane) -> None:
    keys = [f"user-{i}" for i in range(400)]

    async def traffic() -> tuple[dict[str, str], dict[str, str]]:
        first, again = {}, {}
        for key in keys:
            first[key] = (await canary.send("svc", [{"x": 0.5}], rows=1, key=key)).served.ref
        for key in keys:
            again[key] = (await canary.send("svc", [{"x": 0.5}], rows=1, key=key)).served.ref
        return first, again

    first, again = asyncio.run(traffic())
    assert first == again  # a caller never flips between versions while the weight stays put
    share = Counter(first.values())["svc:2"] / len(keys)
    assert 0.4 < share < 0.6  # weight 0.5; binomial sd at n=400 is 0.025


def test_an_unknown_endpoint_and_too_many_rows_are_refused_before_any_version(iris_plane: Plane) -> None:
    with pytest.raises(EndpointNotFoundError, match="no endpoint named 'fraud'"):
        asyncio.run(iris_plane.send("fraud", iris_rows(1), rows=1))
    with pytest.raises(PayloadTooLargeError, match="51 rows, over the limit of 50"):
        asyncio.run(iris_plane.send("iris", iris_rows(51), rows=51))
    assert iris_plane.requests("unknown", "none", 404) == 1
    assert iris_plane.requests("iris", "none", 413) == 1


# -- validation -------------------------------------------------------------------------------


def test_input_that_breaks_the_signature_names_the_feature_and_the_row(iris_plane: Plane) -> None:
    rows = iris_rows(3)
    del rows[2]["f2"]
    with pytest.raises(SignatureError, match=r"row 2: feature 'f2' is missing"):
        asyncio.run(iris_plane.send("iris", rows, rows=3))
    rows = iris_rows(2)
    rows[1]["f0"] = "tall"
    with pytest.raises(SignatureError, match=r"row 1: feature 'f0' expects a number") as mistyped:
        asyncio.run(iris_plane.send("iris", rows, rows=2))
    assert mistyped.value.feature == "f0"  # monitoring counts type violations per feature
    # Refused by the version it was routed to, so counted against it, not as refused before routing.
    assert iris_plane.requests("iris", "iris:1", 422) == 2


# -- where the model runs ---------------------------------------------------------------------


def test_a_fast_model_runs_on_the_event_loop_and_a_slow_one_in_the_thread_pool(sqlite_workspace: Workspace) -> None:
    sqlite_workspace.registry.register(ReportsItsThread(), name="fast", sample_input=SAMPLE, trusted=True)
    sqlite_workspace.registry.register(ReportsItsThread(0.01), name="slow", sample_input=SAMPLE, trusted=True)
    sqlite_workspace.endpoints.create("fast", model="fast:1")
    sqlite_workspace.endpoints.create("slow", model="slow:1")
    plane = Plane(sqlite_workspace)
    routes = plane.dataplane.routes
    assert routes["fast"].models["fast:1"].inline and not routes["slow"].models["slow:1"].inline

    async def on_loop_thread(endpoint: str) -> list[float]:
        outcome = await plane.send(endpoint, [{"x": 0.5}, {"x": 1.5}], rows=2)
        return list(outcome.prediction.predictions)

    assert asyncio.run(on_loop_thread("fast")) == [1.0, 1.0]  # answered without leaving the loop's thread
    assert asyncio.run(on_loop_thread("slow")) == [0.0, 0.0]  # the loop stayed free while it ran


# -- evidence ---------------------------------------------------------------------------------


def test_requests_and_errors_are_counted_against_the_version_and_arm_that_served_them(canary: Plane) -> None:
    values = [round(0.001 * i, 3) for i in range(1, 301)]  # every seventh fails on the candidate only

    async def traffic() -> Counter[tuple[str, int]]:
        served: Counter[tuple[str, int]] = Counter()
        for i, value in enumerate(values):
            try:
                outcome = await canary.send("svc", [{"x": value}], rows=1, key=f"user-{i}")
                served[(outcome.served.ref, 200)] += 1
            except PredictionError as exc:
                assert "svc:2 raised" in str(exc)
                served[("svc:2", 500)] += 1
        return served

    served = asyncio.run(traffic())
    assert served[("svc:2", 500)] > 0 and served[("svc:1", 200)] > 0 and served[("svc:2", 200)] > 0
    for (version, status), n in served.items():
        assert canary.requests("svc", version, status) == n
    assert canary.requests("svc", "svc:1", 500) == 0 and canary.requests("svc", "none", 500) == 0

    evidence = {snap.arm: snap.evidence for snap in canary.dataplane.book.dirty_snapshots()}
    stable, candidate = evidence[Arm.STABLE.value], evidence[Arm.CANDIDATE.value]
    assert (stable.requests, stable.errors) == (served[("svc:1", 200)], 0)
    assert (candidate.requests, candidate.errors) == (
        served[("svc:2", 200)] + served[("svc:2", 500)],
        served[("svc:2", 500)],
    )
