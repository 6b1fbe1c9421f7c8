"""Keep the data plane in step with the store: endpoints, moved aliases, and rollouts' traffic policies.

Runs off the request path, in a thread. A changed endpoint's new version (or a rollout's candidate) is
loaded and warmed first; only then is the routing table swapped, so traffic never reaches a cold or
broken model. When a version cannot load, what worked keeps serving and the problem is reported on
/readyz. Each pass also flushes this worker's rollout evidence to the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from shipyard.core.profile import NumericProfile
from shipyard.core.rollout import RolloutState, policy_for
from shipyard.core.signature import OutputKind
from shipyard.core.versions import ModelVersion
from shipyard.errors import ShipyardError
from shipyard.services.endpoints import EndpointService, ResolvedEndpoint
from shipyard.services.rollouts import RolloutService
from shipyard.serving.dataplane import DataPlane, EndpointRoute, RolloutContext
from shipyard.serving.models import ModelCache, ServedModel

log = logging.getLogger("shipyard.serving")


class Refresher:
    def __init__(
        self, endpoints: EndpointService, cache: ModelCache, dataplane: DataPlane, rollouts: RolloutService
    ) -> None:
        self.endpoints = endpoints
        self.cache = cache
        self.dataplane = dataplane
        self.rollouts = rollouts

    def sync_once(self) -> None:
        """Flush evidence, read the store, load what changed, and install the new routing table (blocking)."""
        self.flush_evidence()
        current = self.dataplane.routes
        routes: dict[str, EndpointRoute] = {}
        problems: dict[str, str] = {}
        try:
            endpoints = self.endpoints.list()
            active = self.rollouts.active_states()
        except ShipyardError as exc:
            log.warning("cannot read endpoints from the store, keeping the current table: %s", exc)
            return
        for endpoint in endpoints:
            try:
                resolved = self.endpoints.resolve(endpoint)
                routes[endpoint.name] = self._route(resolved, active.get(endpoint.name), current.get(endpoint.name))
            except ShipyardError as exc:
                problems[endpoint.name] = str(exc)
                previous = current.get(endpoint.name)
                if previous is not None:
                    routes[endpoint.name] = previous  # keep serving what works
                log.error("endpoint %s: %s", endpoint.name, exc)
        self.dataplane.install(routes, problems)
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
        self, resolved: ResolvedEndpoint, state: RolloutState | None, previous: EndpointRoute | None
    ) -> EndpointRoute:
        endpoint = resolved.endpoint
        policy = policy_for(state) if state is not None else resolved.policy
        versions = {resolved.version.ref: resolved.version}
        models: dict[str, ServedModel] = {}
        for ref in policy.versions:
            version = versions.get(ref) or self.endpoints.registry.get(ref)
            models[ref] = self._served(previous, version, endpoint.strict)
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

    def _served(self, previous: EndpointRoute | None, version: ModelVersion, strict: bool) -> ServedModel:
        if previous is not None:
            existing = previous.models.get(version.ref)
            if (
                existing is not None
                and existing.version.sha256 == version.sha256
                and existing.version.signature == version.signature
                and existing.model.strict == strict
            ):
                return existing
        return self.cache.serve(version, strict=strict)

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
