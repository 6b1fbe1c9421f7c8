"""Prometheus metrics: per endpoint, version and status; correct across ``--workers``.

With several workers, ``shipyard serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before the workers start, and ``/metrics`` merges every worker's files; with one, the default
registry is used directly. Each worker also exports its own CPU seconds, resident memory and open
files, labelled by ``pid``; a worker that exits (or dies) takes its series with it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.registry import Collector

from shipyard.serving.process_stats import read_process_stats

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """The server's metrics, registered once per process."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        self.collectors: list[Collector] = []
        # Values go to per-process files in multiprocess mode whatever registry holds the metric objects.
        registry = self.registry
        self.requests = Counter(
            "shipyard_requests_total",
            "Prediction requests by endpoint, version and HTTP status.",
            ["endpoint", "version", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "shipyard_request_latency_seconds",
            "Prediction latency inside the server, by endpoint and version.",
            ["endpoint", "version"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rows = Counter(
            "shipyard_predicted_rows_total",
            "Rows predicted, by endpoint and version.",
            ["endpoint", "version"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "shipyard_requests_in_flight",
            "Prediction requests being handled now.",
            ["endpoint"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.model_load_seconds = Gauge(
            "shipyard_model_load_seconds",
            "Seconds to load and warm a model version.",
            ["version"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.model_errors = Counter(
            "shipyard_model_errors_total",
            "Predictions where the model itself raised.",
            ["endpoint", "version"],
            registry=registry,
        )
        self.unseen_categories = Counter(
            "shipyard_unseen_categories_total",
            "Values of categorical features not seen in training.",
            ["endpoint", "version", "feature"],
            registry=registry,
        )
        self.shadow_dropped = Counter(
            "shipyard_shadow_dropped_total",
            "Sampled shadow requests the server could not hand to the shadow process, by endpoint and reason "
            "(server_pending_full, shadow_queue_full, handoff_failed); `rollout status` also counts those the "
            "shadow process failed to score (scoring_failed).",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.monitoring_dropped = Counter(
            "shipyard_monitoring_dropped_total",
            "Requests left out of the prediction log and live profiles because the recorder's buffer was full.",
            ["endpoint"],
            registry=registry,
        )
        self.endpoint_degraded = Gauge(
            "shipyard_endpoint_degraded",
            "1 while an endpoint cannot serve the version it should (its previous version, or none, serves), else 0.",
            ["endpoint"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        per_worker = () if self.multiprocess else ("pid",)
        self.process_cpu = Gauge(
            "shipyard_process_cpu_seconds",
            "CPU seconds (user + system) this worker process has used, by pid.",
            per_worker,
            multiprocess_mode="liveall",
            registry=registry,
        )
        self.process_resident = Gauge(
            "shipyard_process_resident_memory_bytes",
            "Resident memory of this worker process, by pid.",
            per_worker,
            multiprocess_mode="liveall",
            registry=registry,
        )
        self.process_fds = Gauge(
            "shipyard_process_open_fds",
            "Open file descriptors of this worker process, by pid.",
            per_worker,
            multiprocess_mode="liveall",
            registry=registry,
        )
        self.rate_limited = Counter(
            "shipyard_rate_limited_total",
            "Requests refused with 429, by endpoint and reason: key (the caller's limit), endpoint (the endpoint's), "
            "auth_failures (an address that failed authentication too often; endpoint empty).",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.load_failures = Counter(
            "shipyard_model_load_failures_total",
            "Model versions that failed to load or warm.",
            ["version"],
            registry=registry,
        )

    def add_collector(self, collector: Collector) -> None:
        """Series computed elsewhere (the monitoring series): each worker renders its own, not merged by file."""
        self.collectors.append(collector)
        if not self.multiprocess:
            self.registry.register(collector)

    def sample_process(self) -> None:
        """Set this worker's process gauges from the OS (a few microseconds; every poll, and on scrape)."""
        stats = read_process_stats()
        for gauge, value in (
            (self.process_cpu, stats.cpu_seconds),
            (self.process_resident, stats.resident_bytes),
            (self.process_fds, stats.open_fds),
        ):
            if value is not None:
                # In multiprocess mode prometheus_client adds the pid label itself (multiprocess_mode="liveall").
                (gauge if self.multiprocess else gauge.labels(str(os.getpid()))).set(value)

    def close(self) -> None:
        """At a worker's clean exit: remove its live series (process figures, requests in flight)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())

    def render(self) -> tuple[bytes, str]:
        self.sample_process()
        if self.multiprocess:
            from prometheus_client import multiprocess

            _forget_dead_workers()
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            for collector in self.collectors:
                registry.register(collector)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_LIVE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def _forget_dead_workers() -> None:
    """Drop the live series of workers that died without a clean exit (killed, crashed), so they do not linger."""
    from prometheus_client import multiprocess

    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    pids = {
        int(m.group(1))
        for f in glob.glob(os.path.join(directory, "gauge_live*.db"))
        if (m := _LIVE_FILE.match(os.path.basename(f)))
    }
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                multiprocess.mark_process_dead(pid, directory)
        except PermissionError:
            pass  # alive, owned by someone else
