"""The protocol-neutral data plane: route a request, validate it, predict, and count what happened.

The REST and Open Inference Protocol routes translate their wire formats to a call here. The routing
table is replaced as a whole by the refresher (one attribute assignment), so a request sees either
the old table or the new one, never a mix, and needs no lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from shipyard.core.endpoints import Arm, Endpoint, TrafficPolicy, route
from shipyard.errors import EndpointNotFoundError, NotReadyError, PayloadTooLargeError, PredictionError
from shipyard.flavors.loaded import Prediction
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.models import ServedModel


@dataclass(frozen=True, slots=True)
class EndpointRoute:
    """An endpoint as served now: its traffic policy and the warmed models the policy names."""

    endpoint: Endpoint
    policy: TrafficPolicy
    models: Mapping[str, ServedModel]


@dataclass(frozen=True, slots=True)
class PredictOutcome:
    endpoint: str
    served: ServedModel
    arm: Arm
    prediction: Prediction
    rows: int


@dataclass(slots=True)
class _Table:
    routes: Mapping[str, EndpointRoute] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)
    synced: bool = False


class DataPlane:
    """Serves predictions from whatever routing table was installed last."""

    def __init__(self, metrics: ServingMetrics, *, max_rows: int) -> None:
        self.metrics = metrics
        self.max_rows = max_rows
        self._table = _Table()
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._gauges: dict[str, Any] = {}

    # -- the routing table -----------------------------------------------------------------

    def install(self, routes: Mapping[str, EndpointRoute], problems: Mapping[str, str]) -> None:
        """Swap in a new routing table at once; called by the refresher after models are warm."""
        self._table = _Table(dict(routes), dict(problems), True)

    @property
    def routes(self) -> Mapping[str, EndpointRoute]:
        return self._table.routes

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready once the first sync finished and every endpoint has a loaded model."""
        table = self._table
        if not table.synced:
            return False, {"ready": False, "reason": "models are still loading"}
        not_ready = {name: msg for name, msg in table.problems.items() if name not in table.routes}
        endpoints = {name: r.policy.stable for name, r in table.routes.items()}
        return not not_ready, {"ready": not not_ready, "endpoints": endpoints, "not_ready": not_ready}

    def route_for(self, endpoint: str) -> EndpointRoute:
        table = self._table
        found = table.routes.get(endpoint)
        if found is not None:
            return found
        if endpoint in table.problems:
            raise NotReadyError(f"endpoint {endpoint!r} has no loaded model: {table.problems[endpoint]}")
        if not table.synced:
            raise NotReadyError(f"endpoint {endpoint!r} is not loaded yet; the server is starting")
        raise EndpointNotFoundError(f"no endpoint named {endpoint!r}")

    # -- predictions -----------------------------------------------------------------------

    def check_rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise PayloadTooLargeError(
                f"request has {rows} rows, over the limit of {self.max_rows}; split it or use `shipyard batch`"
            )

    def select(self, endpoint: str, routing_key: str) -> tuple[ServedModel, Arm]:
        target = self.route_for(endpoint)
        decision = route(target.policy, routing_key)
        return target.models[decision.version], decision.arm

    def predict(self, endpoint: str, served: ServedModel, arm: Arm, payload: Any, rows: int) -> PredictOutcome:
        """Validate and predict on the calling thread (the event loop for fast models)."""
        x = served.model.prepare(payload)
        try:
            prediction = served.model.call(x)
        except PredictionError:
            self.metrics.model_errors.labels(endpoint, served.ref).inc()
            raise
        if served.categorical:
            self._count_unseen(endpoint, served, x)
        return PredictOutcome(endpoint, served, arm, prediction, rows)

    async def apredict(self, endpoint: str, payload: Any, *, rows: int, routing_key: str) -> PredictOutcome:
        """Predict inline when the model is fast, else in the thread pool (decided at load time)."""
        self.check_rows(rows)
        served, arm = self.select(endpoint, routing_key)
        if served.inline:
            return self.predict(endpoint, served, arm, payload, rows)
        return await anyio.to_thread.run_sync(self.predict, endpoint, served, arm, payload, rows)

    def _count_unseen(self, endpoint: str, served: ServedModel, x: Any) -> None:
        for name, known in served.categorical:
            try:
                values: Sequence[Any] = x[name]
            except (KeyError, IndexError, TypeError, ValueError):
                return
            unseen = sum(1 for v in values if isinstance(v, str) and v not in known)
            if unseen:
                self.metrics.unseen_categories.labels(endpoint, served.ref, name).inc(unseen)

    def observe(self, endpoint: str, version: str, status: int, seconds: float, rows: int) -> None:
        """Count one request; the labelled metric children are looked up once per label set."""
        key = (endpoint, version, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.metrics.requests.labels(endpoint, version, str(status)),
                self.metrics.latency.labels(endpoint, version),
                self.metrics.rows.labels(endpoint, version),
            )
        requests, latency, rows_counter = children
        requests.inc()
        if status < 400:
            latency.observe(seconds)
            rows_counter.inc(rows)

    def in_flight(self, endpoint: str) -> Any:
        gauge = self._gauges.get(endpoint)
        if gauge is None:
            gauge = self._gauges[endpoint] = self.metrics.in_flight.labels(endpoint)
        return gauge
