"""The protocol-neutral data plane: route a request, validate it, predict, and count what happened.

The REST and Open Inference Protocol routes translate their wire formats to a call here, inside one
``observed`` bracket per request that times it, keeps the in-flight gauge, and counts it under its status
and the version that served it. The routing table is replaced as a whole by the refresher (one attribute
assignment), so a request sees either the old table or the new one, never a mix, and needs no lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import anyio.to_thread
import numpy as np

from shipyard.core.endpoints import Arm, Endpoint, RouteDecision, TrafficPolicy, route
from shipyard.errors import EndpointNotFoundError, NotReadyError, PayloadTooLargeError, PredictionError, SignatureError
from shipyard.flavors.loaded import Prediction
from shipyard.rollouts.evidence import ShadowComparison
from shipyard.serving.evidence import EvidenceBook
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.models import ServedModel
from shipyard.serving.observed import Observed
from shipyard.serving.recorder import Recorder
from shipyard.serving.shadow import WINDOW_S as SHADOW_WINDOW_S
from shipyard.serving.shadow import ShadowItem, ShadowProcess

log = logging.getLogger("shipyard.serving")

MAX_SHADOW_PENDING = 20_000
"""Sampled requests waiting (at most ``shadow.WINDOW_S``) to go to the shadow process; more are dropped, counted."""


@dataclass(frozen=True, slots=True)
class RolloutContext:
    """The rollout an endpoint is in, as far as counting evidence needs to know."""

    rollout_id: str
    step: int
    classification: bool
    prediction_edges: tuple[float, ...] | None = None
    """Bins for numeric predictions, from the stable version's reference profile; without them the
    prediction-shift gate has nothing to compare and reports itself skipped."""
    same_features: bool = False
    """Every version in the rollout takes the same features in the same order, so the checked matrix the
    serving version was called with can go to the shadow process as it is (one compact array to pickle and
    stack, no rows to rebuild) instead of the request's JSON rows."""


@dataclass(frozen=True, slots=True)
class EndpointRoute:
    """An endpoint as served now: its traffic policy, the warmed models it names, and its rollout if any."""

    endpoint: Endpoint
    policy: TrafficPolicy
    models: Mapping[str, ServedModel]
    rollout: RolloutContext | None = None


@dataclass(frozen=True, slots=True)
class Routed:
    """Where one request goes, decided before its model runs, so whatever the model then does (answer,
    refuse the input, raise) is counted against the version and arm that did it."""

    endpoint: str
    route: EndpointRoute
    decision: RouteDecision
    served: ServedModel

    @property
    def arm(self) -> Arm:
        return self.decision.arm


@dataclass(frozen=True, slots=True)
class PredictOutcome:
    endpoint: str
    served: ServedModel
    arm: Arm
    prediction: Prediction
    rows: int
    inputs: Any = None
    """What monitoring profiles: the checked float matrix when the model takes one, else the request's payload."""


@dataclass(frozen=True, slots=True)
class Degraded:
    """An endpoint still served by its previous version because the one it should serve cannot load."""

    serving: str
    wanted: str
    reason: str
    """Why ``wanted`` cannot serve, with no server paths in it: it is shown to callers on /readyz."""

    def to_dict(self) -> dict[str, str]:
        return {"serving": self.serving, "wanted": self.wanted, "reason": self.reason}


@dataclass(slots=True)
class _Table:
    routes: Mapping[str, EndpointRoute] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)
    degraded: Mapping[str, Degraded] = field(default_factory=dict)
    synced: bool = False


class DataPlane:
    """Serves predictions from whatever routing table was installed last."""

    def __init__(
        self,
        metrics: ServingMetrics,
        *,
        max_rows: int,
        shadow: ShadowProcess | None = None,
        recorder: Recorder | None = None,
        max_shadow_pending: int = MAX_SHADOW_PENDING,
    ) -> None:
        self.metrics = metrics
        self.recorder = recorder
        self.max_rows = max_rows
        self.book = EvidenceBook()
        self.shadow = shadow
        self.max_shadow_pending = max_shadow_pending
        self._shadow_pending: list[ShadowItem] = []
        self._shadow_drops: dict[tuple[str, str, int, str], int] = {}  # (endpoint, rollout, step, reason) -> n
        self._table = _Table()
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._gauges: dict[str, Any] = {}
        self._degraded_labels: set[str] = set()

    # -- the routing table -----------------------------------------------------------------

    def install(
        self,
        routes: Mapping[str, EndpointRoute],
        *,
        problems: Mapping[str, str],
        degraded: Mapping[str, Degraded],
    ) -> None:
        """Swap in a new routing table at once; called by the refresher after models are warm.

        ``problems`` are endpoints with no loaded model at all (their requests get 503); ``degraded`` ones
        keep serving their previous version. Both are set in ``shipyard_endpoint_degraded`` for alerting.
        """
        self._table = _Table(dict(routes), dict(problems), dict(degraded), True)
        gauge = self.metrics.endpoint_degraded
        failing = set(problems) | set(degraded)
        for name in failing | self._degraded_labels:
            gauge.labels(name).set(1 if name in failing else 0)
        self._degraded_labels = failing | {name for name in self._degraded_labels if name in routes}

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
        degraded = {name: d.to_dict() for name, d in table.degraded.items()}
        body = {"ready": not not_ready, "endpoints": endpoints, "not_ready": not_ready, "degraded": degraded}
        return not not_ready, body

    def route_for(self, endpoint: str) -> EndpointRoute:
        """The endpoint as served now; a 404 or 503 error when it is unknown or has no loaded model."""
        found = self._table.routes.get(endpoint)
        if found is not None:
            return found
        self.refuse(endpoint)

    def refuse(self, endpoint: str) -> NoReturn:
        """Raise why ``endpoint`` is not in the routing table: unknown, or known but with no loaded model."""
        table = self._table
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
        return PredictOutcome(endpoint, served, arm, prediction, rows, x if isinstance(x, np.ndarray) else payload)

    def _timed(
        self, endpoint: str, served: ServedModel, arm: Arm, payload: Any, rows: int
    ) -> tuple[PredictOutcome, float]:
        """Predict, and how long the version itself took (ms), timed on the thread that ran it.

        Rollout latency evidence compares arms; waiting for a pool thread is shared by both arms and, on a
        busy machine, large enough to hide a slower candidate, so it is left out.
        """
        start = time.perf_counter()
        outcome = self.predict(endpoint, served, arm, payload, rows)
        return outcome, (time.perf_counter() - start) * 1e3

    def choose(self, target: EndpointRoute, *, rows: int, routing_key: str) -> Routed:
        """Check the row limit, then pick the version and arm of ``target`` that will serve this request.

        ``target`` is the route the request looked up when it arrived (``observed`` does it once). Refusals
        up to here (unknown endpoint, no loaded model, too many rows) reach no version; everything after
        belongs to the version chosen, which the bracket keeps to count the request against it.
        """
        self.check_rows(rows)
        decision = route(target.policy, routing_key)
        return Routed(target.endpoint.name, target, decision, target.models[decision.version])

    async def apredict(self, routed: Routed, payload: Any, *, rows: int, request_id: str = "") -> PredictOutcome:
        """Predict inline when the model is fast, else in the thread pool (decided at load time).

        During a rollout, the request's arm gets its latency, error and predictions counted, and a
        sampled request is queued for the shadow version after this one is answered.
        """
        endpoint, target, decision, served = routed.endpoint, routed.route, routed.decision, routed.served
        if target.rollout is None:
            if served.inline:
                return self.predict(endpoint, served, decision.arm, payload, rows)
            return await anyio.to_thread.run_sync(self.predict, endpoint, served, decision.arm, payload, rows)
        context = target.rollout
        counter = self.book.counter(
            context.rollout_id,
            context.step,
            decision.arm.value,
            classification=context.classification,
            edges=context.prediction_edges,
        )
        start = time.perf_counter()
        try:
            if served.inline:
                outcome, latency_ms = self._timed(endpoint, served, decision.arm, payload, rows)
            else:
                outcome, latency_ms = await anyio.to_thread.run_sync(
                    self._timed, endpoint, served, decision.arm, payload, rows
                )
        except PredictionError:
            counter.add((time.perf_counter() - start) * 1e3, True)
            raise
        counter.add(latency_ms, False, outcome.prediction.predictions)
        if decision.shadow is not None:
            if len(self._shadow_pending) < self.max_shadow_pending:
                inputs = outcome.inputs
                self._shadow_pending.append(
                    ShadowItem(
                        endpoint=endpoint,
                        rollout_id=context.rollout_id,
                        step=context.step,
                        classification=context.classification,
                        shadow_ref=decision.shadow,
                        payload=inputs if context.same_features and isinstance(inputs, np.ndarray) else payload,
                        primary=outcome.prediction.predictions.tolist(),
                        request_id=request_id,
                    )
                )
            else:
                self._drop_shadow(endpoint, context.rollout_id, context.step, "server_pending_full")
        return outcome

    async def run_shadows(self) -> None:
        """Every ``WINDOW_S``, hand the sampled requests to the shadow process as one batch.

        Callers never wait on this: the request path only appends to a list, and the shadow versions are
        scored in another process, so they do not compete with callers for this process's GIL.
        """
        while True:
            await asyncio.sleep(SHADOW_WINDOW_S)
            await self.hand_over_shadows()

    async def hand_over_shadows(self) -> None:
        """Hand what was sampled since the last call to the shadow process, and count what could not go.

        Drops are counted by endpoint and reason in ``shipyard_shadow_dropped_total`` and, by rollout step,
        into this worker's shadow evidence, so ``rollout status`` shows them beside what was compared.
        """
        if self._shadow_pending and self.shadow is not None:
            batch, self._shadow_pending = self._shadow_pending, []
            try:
                reason = None if await asyncio.to_thread(self.shadow.submit, batch) else "shadow_queue_full"
            except Exception:  # a broken shadow process must never touch the callers' path
                log.exception("handing requests to the shadow process failed")
                reason = "handoff_failed"
            if reason is not None:
                for item in batch:
                    self._drop_shadow(item.endpoint, item.rollout_id, item.step, reason)
        if self._shadow_drops:
            drops, self._shadow_drops = self._shadow_drops, {}
            for (endpoint, rollout_id, step, why), n in drops.items():
                self.metrics.shadow_dropped.labels(endpoint, why).inc(n)
                self.book.add_shadow(rollout_id, step, ShadowComparison.of_dropped(why, n))

    def _drop_shadow(self, endpoint: str, rollout_id: str, step: int, reason: str) -> None:
        """Count one sampled request that will not be compared (cheap: the request path may call it)."""
        key = (endpoint, rollout_id, step, reason)
        self._shadow_drops[key] = self._shadow_drops.get(key, 0) + 1

    def _count_unseen(self, endpoint: str, served: ServedModel, x: Any) -> None:
        for name, known in served.categorical:
            try:
                values: Sequence[Any] = x[name]
            except (KeyError, IndexError, TypeError, ValueError):
                return
            unseen = sum(1 for v in values if isinstance(v, str) and v not in known)
            if unseen:
                self.metrics.unseen_categories.labels(endpoint, served.ref, name).inc(unseen)

    def observed(self, endpoint: str, request_id: str) -> Observed:
        """The bracket around one request to ``endpoint``, whatever protocol it came in by (see ``Observed``)."""
        return Observed(self, endpoint, request_id)

    def count(self, call: Observed, seconds: float) -> None:
        """Count one finished request, and hand it to the recorder; metric children are looked up once per label set.

        A request is counted against the version it was routed to, whether that version answered or raised;
        only a request refused before routing is counted under version ``none``.
        """
        endpoint, status, rows, routed, outcome = call.label, call.status, call.rows, call.routed, call.outcome
        served = routed.served if routed is not None else None
        recorder = self.recorder
        if recorder is not None and endpoint != "unknown":
            if outcome is not None:
                recorder.add(
                    endpoint,
                    outcome.served.version,
                    arm=outcome.arm.value,
                    inputs=outcome.inputs,
                    prediction=outcome.prediction,
                    request_id=call.request_id,
                    rows=rows,
                    latency_s=seconds,
                    status=status,
                )
            else:
                error = call.error
                recorder.add(
                    endpoint,
                    served.version if served is not None else None,
                    arm=routed.arm.value if routed is not None else "",
                    request_id=call.request_id,
                    rows=rows,
                    latency_s=seconds,
                    status=status,
                    problem_feature=error.feature if isinstance(error, SignatureError) else None,
                )
        version = served.ref if served is not None else "none"
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
