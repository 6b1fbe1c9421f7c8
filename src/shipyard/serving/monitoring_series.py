"""Monitoring series in ``/metrics``, refreshed off the request path from the stored windows.

A background thread builds each endpoint's monitoring report over the last ``window`` (an hour) and keeps
the samples; a scrape only renders what the last refresh computed. Every worker and replica refreshes from
the same stored windows, right after the same slot boundary and with the report's end set to that boundary,
so any of them answers the same series for the same stored data. Only versions an endpoint serves or rolls
out to are exported (``monitoring.series`` caps the features per version).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shipyard.errors import ShipyardError
from shipyard.monitoring.series import HELP, MAX_FEATURES, Sample, endpoint_series
from shipyard.services.monitoring import MonitoringService
from shipyard.workspace import Workspace

log = logging.getLogger("shipyard.serving")

WINDOW = "1h"
"""The range each refresh merges: the last hour of stored windows."""


def refresh_interval_s(poll_interval_s: float) -> float:
    """15 polls (15 s by default), at least 2 s: a report per endpoint is a few tens of milliseconds."""
    return max(2.0, 15.0 * poll_interval_s)


class MonitoringSeries(Collector):
    """The last refresh's samples, as a prometheus collector (registered with ``ServingMetrics``)."""

    def __init__(
        self, workspace: Workspace, *, refresh_s: float, window: str = WINDOW, max_features: int = MAX_FEATURES
    ) -> None:
        self.workspace = workspace
        self.refresh_s = refresh_s
        self.window = window
        self.max_features = max_features
        self._slot = datetime.now(UTC)
        source = workspace.monitoring
        self._monitoring = MonitoringService(
            workspace.endpoints,
            workspace.feedback,
            workspace.prediction_log,
            window_s=source.window_s,
            drift_thresholds=source.drift_thresholds,
            clock=lambda: self._slot,
        )
        self._samples: tuple[Sample, ...] = ()
        self._cost_s: float | None = None

    def slot(self, now: float) -> datetime:
        """The refresh slot's start: the report's end, the same for every process refreshing in this slot."""
        return datetime.fromtimestamp(now - now % self.refresh_s, UTC)

    def refresh(self) -> None:
        """Recompute every endpoint's series from the store (on a thread, never on the event loop)."""
        started = time.perf_counter()
        self._slot = self.slot(time.time())
        active = self.workspace.rollouts.active_states()
        samples: list[Sample] = []
        for endpoint in self.workspace.endpoints.list():
            try:
                served = {self.workspace.endpoints.resolve(endpoint).version.ref}
                rollout = active.get(endpoint.name)
                if rollout is not None:
                    served |= {rollout.stable, rollout.candidate}
                report = self._monitoring.report(endpoint.name, window=self.window)
            except ShipyardError as exc:  # a version that no longer loads, an endpoint deleted meanwhile
                log.warning("monitoring series of %s not refreshed: %s", endpoint.name, exc)
                continue
            reports = [v.to_dict() for v in report.versions if v.version in served]
            samples.extend(endpoint_series(endpoint.name, reports, max_features=self.max_features))
        self._samples = tuple(samples)  # swapped whole: a scrape sees one refresh or the next, never a mix
        self._cost_s = time.perf_counter() - started

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_name: dict[str, list[Sample]] = defaultdict(list)
        for sample in self._samples:
            by_name[sample.name].append(sample)
        for name, samples in sorted(by_name.items()):
            family = GaugeMetricFamily(name, HELP[name], labels=[k for k, _ in samples[0].labels])
            for sample in samples:
                family.add_metric([v for _, v in sample.labels], sample.value)
            yield family
        if self._cost_s is not None:
            cost = GaugeMetricFamily(
                "shipyard_monitoring_refresh_seconds",
                "Seconds this worker's last refresh of the monitoring series took, by pid.",
                labels=["pid"],
            )
            cost.add_metric([str(os.getpid())], self._cost_s)
            yield cost

    async def run(self) -> None:
        """Refresh right after each slot boundary, on a thread; a failed refresh keeps the last samples."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except ShipyardError as exc:
                log.error("monitoring series refresh failed: %s", exc)
            except Exception:  # keep refreshing after an unexpected failure
                log.exception("monitoring series refresh failed")
            now = time.time()
            await asyncio.sleep(self.refresh_s - now % self.refresh_s + 0.05)
