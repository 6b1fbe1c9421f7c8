"""Keep the data plane in step with the store: endpoints, moved aliases, and rollouts' traffic policies.

Runs off the request path, in a thread. A changed endpoint's new version (or a rollout's candidate) is
loaded and warmed first; only then is the routing table swapped, so traffic never reaches a cold or
broken model. When a version cannot load, what worked keeps serving and /readyz reports the endpoint as
degraded, with the reason. A version that failed is tried again after a pause that doubles on each
failure (``RETRY_FIRST_S`` up to ``RETRY_MAX_S``), not on every pass: loading a large model every second
would cost CPU and fill the log with one error. Each pass also flushes this worker's rollout evidence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.core.profile import NumericProfile
from shipyard.core.signature import OutputKind
from shipyard.core.versions import ModelVersion
from shipyard.errors import ShipyardError
from shipyard.rollouts.machine import RolloutState, policy_for
from shipyard.services.endpoints import EndpointService, ResolvedEndpoint
from shipyard.services.rollouts import RolloutService
from shipyard.serving.dataplane import DataPlane, Degraded, EndpointRoute, RolloutContext
from shipyard.serving.models import ModelCache, ServedModel
from shipyard.serving.redact import without_paths

log = logging.getLogger("shipyard.serving")

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class Unloadable:
    """What an endpoint should serve but cannot: the version (or ref) and why, fit to show callers."""

    wanted: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Retry:
    """A version that failed to load: how often, when to try again, and the last reason."""

    attempts: int
    next_at: float
    reason: str


def retry_delay_s(attempts: int) -> float:
    """The pause after ``attempts`` failed loads in a row: 1, 2, 4, ... seconds, at most ``RETRY_MAX_S``."""
    return min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** min(attempts - 1, 32))


class Refresher:
    def __init__(
        self,
        endpoints: EndpointService,
        cache: ModelCache,
        dataplane: DataPlane,
        rollouts: RolloutService,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = endpoints
        self.cache = cache
        self.dataplane = dataplane
        self.rollouts = rollouts
        self.clock = clock
        self.passes = 0
        """Sync passes so far; with the load-failure counter, shows retries are fewer than passes."""
        self._retries: dict[str, _Retry] = {}
        self._reported: dict[str, str] = {}  # endpoint -> the store problem last logged for it

    def sync_once(self) -> None:
        """Flush evidence, read the store, load what changed, and install the new routing table (blocking)."""
        self.flush_evidence()
        current = self.dataplane.routes
        self.passes += 1
        routes: dict[str, EndpointRoute] = {}
        problems: dict[str, str] = {}
        degraded: dict[str, Degraded] = {}
        try:
            endpoints = self.endpoints.list()
            active = self.rollouts.active_states()
        except ShipyardError as exc:
            log.warning("cannot read endpoints from the store, keeping the current table: %s", exc)
            return
        wanted: set[str] = set()
        for endpoint in endpoints:
            previous = current.get(endpoint.name)
            try:
                resolved = self.endpoints.resolve(endpoint)
                found = self._route(resolved, active.get(endpoint.name), previous, wanted)
            except ShipyardError as exc:  # the store cannot say what to serve (e.g. a deleted alias)
                found = Unloadable(endpoint.model, without_paths(str(exc)))
                if self._reported.get(endpoint.name) != str(exc):  # logged when it starts or changes
                    log.error("endpoint %s: %s", endpoint.name, exc)
                    self._reported[endpoint.name] = str(exc)
            else:
                self._reported.pop(endpoint.name, None)
            if isinstance(found, EndpointRoute):
                routes[endpoint.name] = found
                continue
            if previous is not None:
                routes[endpoint.name] = previous  # keep serving what works
                degraded[endpoint.name] = Degraded(previous.policy.stable, found.wanted, found.reason)
            else:
                problems[endpoint.name] = f"{found.wanted} cannot serve: {found.reason}"
        for ref in [r for r in self._retries if r not in wanted]:  # no longer wanted: a new want starts afresh
            del self._retries[ref]
        self.dataplane.install(routes, problems=problems, degraded=degraded)
        self.dataplane.book.forget({state.id for state in active.values()})
        self.cache.retain([m.version for r in routes.values() for m in r.models.values()])

    def flush_evidence(self) -> None:
        book = self.dataplane.book
        snapshots = book.dirty_snapshots()
        try:
            self.rollouts.record_evidence(book.worker, snapshots)
        except ShipyardError as exc:
            book.restore(snapshots)  # the store is down: keep counting, send it next time
            log.warning("cannot flush rollout evidence, will retry: %s", exc)

    def _route(
        self,
        resolved: ResolvedEndpoint,
        state: RolloutState | None,
        previous: EndpointRoute | None,
        wanted: set[str],
    ) -> EndpointRoute | Unloadable:
        """The endpoint's new route, or the first version it needs that cannot load (or is waiting to retry)."""
        endpoint = resolved.endpoint
        policy = policy_for(state) if state is not None else resolved.policy
        versions = {resolved.version.ref: resolved.version}
        models: dict[str, ServedModel] = {}
        for ref in policy.versions:
            wanted.add(ref)
            version = versions.get(ref) or self.endpoints.registry.get(ref)
            served = self._served(previous, version, endpoint.strict)
            if isinstance(served, Unloadable):
                return served
            models[ref] = served
        context = None
        if state is not None:
            stable = models[policy.stable].version
            context = RolloutContext(
                state.id,
                state.step_index,
                stable.signature.output.kind is OutputKind.CLASSIFICATION,
                _prediction_edges(stable),
                same_features=len({m.version.signature.names for m in models.values()}) == 1,
            )
        return EndpointRoute(endpoint, policy, models, context)

    def _served(self, previous: EndpointRoute | None, version: ModelVersion, strict: bool) -> ServedModel | Unloadable:
        if previous is not None:
            existing = previous.models.get(version.ref)
            if (
                existing is not None
                and existing.version.sha256 == version.sha256
                and existing.version.signature == version.signature
                and existing.model.strict == strict
            ):
                return existing
        retry = self._retries.get(version.ref)
        now = self.clock()
        if retry is not None and now < retry.next_at:
            return Unloadable(version.ref, retry.reason)
        try:
            served = self.cache.serve(version, strict=strict)
        except ShipyardError as exc:
            attempts = retry.attempts + 1 if retry is not None else 1
            delay_s = retry_delay_s(attempts)
            self._retries[version.ref] = _Retry(attempts, now + delay_s, without_paths(str(exc)))
            log.error("cannot serve %s (attempt %d, next in %.0fs): %s", version.ref, attempts, delay_s, exc)
            return Unloadable(version.ref, without_paths(str(exc)))
        self._retries.pop(version.ref, None)
        return served

    async def run(self, interval_s: float, on_first_sync: Callable[[], None] | None = None) -> None:
        """Sync now, then every ``interval_s`` seconds, until cancelled."""
        first = True
        while True:
            try:
                await asyncio.to_thread(self.sync_once)
            except Exception:  # a bug here must not stop serving what is already loaded
                log.exception("refreshing endpoints failed")
            if first:
                first = False
                if on_first_sync is not None:
                    on_first_sync()
            await asyncio.sleep(interval_s)


def _prediction_edges(version: ModelVersion) -> tuple[float, ...] | None:
    """Numeric predictions are counted in the reference profile's bins, so arms compare like for like."""
    profile = version.reference_profile.prediction if version.reference_profile else None
    return profile.edges if isinstance(profile, NumericProfile) else None
