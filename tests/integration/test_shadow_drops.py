"""Sampled shadow requests that never reach a comparison are counted, by reason, where operators look:
``shipyard_shadow_dropped_total{endpoint, reason}``, the rollout's shadow evidence in the store, ``rollout
status`` (from any process) and ``GET .../rollouts/current``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd

from shipyard.config import Settings
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.models import ModelCache
from shipyard.serving.refresher import Refresher
from shipyard.workspace import Workspace
from tests.integration.test_cli import run
from tests.serving_models import Doubler
from tests.serving_support import running_server

SAMPLE = pd.DataFrame({"x": [0.101, 0.202, 0.303, 0.404]})


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s}s")


def shadow_rollout(workspace: Workspace) -> None:
    """Endpoint ``svc`` on svc:1 with svc:2 shadowing every request."""
    workspace.registry.register(Doubler(), name="svc", sample_input=SAMPLE, trusted=True)
    # a candidate with its own artifact file (equal models share one), never failing on these inputs
    workspace.registry.register(Doubler(fail_one_in=1_000_003), name="svc", sample_input=SAMPLE, trusted=True)
    workspace.endpoints.create("svc", model="svc:1")
    workspace.rollouts.start("svc", to="svc:2", strategy="shadow", sample=1.0)


def dropped(workspace: Workspace) -> dict[str, int]:
    report = workspace.rollouts.status("svc").to_dict().get("shadow_report")  # none until a worker flushes one
    return report["dropped"] if report else {}


def test_requests_beyond_the_servers_pending_list_are_dropped_and_counted_by_endpoint_and_reason(
    workspace: Workspace,
) -> None:
    shadow_rollout(workspace)
    metrics = ServingMetrics()
    plane = DataPlane(metrics, max_rows=100, max_shadow_pending=3)  # no shadow process takes the list
    refresher = Refresher(workspace.endpoints, ModelCache(workspace.registry, metrics), plane, workspace.rollouts)
    refresher.sync_once()
    assert plane.routes["svc"].rollout is not None

    async def traffic() -> None:
        for i in range(10):
            routed = plane.choose(plane.route_for("svc"), rows=1, routing_key=f"user-{i}")
            await plane.apredict(routed, [{"x": 0.5}], rows=1, request_id=f"r{i}")
        await plane.hand_over_shadows()

    asyncio.run(traffic())
    refresher.flush_evidence()

    text = metrics.render()[0].decode()
    assert 'shipyard_shadow_dropped_total{endpoint="svc",reason="server_pending_full"} 7.0' in text
    assert dropped(workspace) == {"server_pending_full": 7}
    assert workspace.rollouts.status("svc").shadow.requests == 0  # type: ignore[union-attr]


def test_requests_the_shadow_process_cannot_score_are_shown_as_dropped_by_rollout_status(
    settings: Settings, workspace: Workspace
) -> None:
    shadow_rollout(workspace)
    candidate = workspace.registry.get("svc:2")
    with running_server(settings.model_copy(update={"poll_interval_s": 0.2}), workspace) as url:
        wait_for(lambda: url.app.state.dataplane.routes["svc"].rollout is not None)
        path = Path(workspace.artifacts.location(candidate.sha256))  # the server has it loaded already;
        path.chmod(0o644)  # the shadow process loads it on first use, and finds it tampered with
        path.write_bytes(b"tampered")
        for i in range(20):
            response = httpx.post(f"{url}/v1/endpoints/svc/predict", json={"instances": [{"x": 0.5 + i}]}, timeout=10)
            assert response.status_code == 200 and response.json()["version"] == 1
        wait_for(lambda: dropped(workspace).get("scoring_failed", 0) == 20, timeout_s=90)  # spawned at low priority
        current = httpx.get(f"{url}/v1/endpoints/svc/rollouts/current", timeout=10).json()

    assert current["shadow_report"]["dropped"] == {"scoring_failed": 20}
    assert current["shadow_report"]["requests"] == 0
    env = {"SHIPYARD_DATABASE_URL": settings.database_url, "SHIPYARD_ARTIFACT_URI": settings.artifact_uri}
    text = run(["rollout", "status", "svc"], settings.home, extra_env=env).stdout
    lines = text.splitlines()
    assert any("requests dropped" in line and line.rstrip(" │").endswith("20") for line in lines), text
    assert any("dropped: shadow process failed to score" in line and "20" in line for line in lines), text
    view = json.loads(run(["rollout", "status", "svc", "--json"], settings.home, extra_env=env).stdout)
    assert view["shadow_report"]["dropped"] == {"scoring_failed": 20}
