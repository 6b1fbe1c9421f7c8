"""Keep the data plane in step with the store: new endpoints, re-pointed endpoints, moved aliases.

Runs off the request path, in a thread. A changed endpoint's new version is loaded and warmed first;
only then is the routing table swapped, so traffic never reaches a cold or broken model. When the new
version cannot load, the old one keeps serving and the problem is reported on /readyz.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from shipyard.core.versions import ModelVersion
from shipyard.errors import ShipyardError
from shipyard.services.endpoints import EndpointService
from shipyard.serving.dataplane import DataPlane, EndpointRoute
from shipyard.serving.models import ModelCache, ServedModel

log = logging.getLogger("shipyard.serving")


class Refresher:
    def __init__(self, endpoints: EndpointService, cache: ModelCache, dataplane: DataPlane) -> None:
        self.endpoints = endpoints
        self.cache = cache
        self.dataplane = dataplane

    def sync_once(self) -> None:
        """Read the store, load what changed, and install the new routing table (blocking)."""
        current = self.dataplane.routes
        routes: dict[str, EndpointRoute] = {}
        problems: dict[str, str] = {}
        try:
            endpoints = self.endpoints.list()
        except ShipyardError as exc:
            log.warning("cannot read endpoints from the store, keeping the current table: %s", exc)
            return
        for endpoint in endpoints:
            try:
                resolved = self.endpoints.resolve(endpoint)
                served = self._served(current.get(endpoint.name), resolved.version, endpoint.strict)
                routes[endpoint.name] = EndpointRoute(endpoint, resolved.policy, {served.ref: served})
            except ShipyardError as exc:
                problems[endpoint.name] = str(exc)
                previous = current.get(endpoint.name)
                if previous is not None:
                    routes[endpoint.name] = previous  # keep serving the version that works
                log.error("endpoint %s: %s", endpoint.name, exc)
        self.dataplane.install(routes, problems)
        self.cache.retain([m.version for r in routes.values() for m in r.models.values()])

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
