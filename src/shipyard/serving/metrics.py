"""Prometheus metrics: per endpoint, version and status; correct across ``--workers``.

With several workers, ``shipyard serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before the workers start, and ``/metrics`` merges every worker's files; with one, the default
registry is used directly.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """The server's metrics, registered once per process."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
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
        self.load_failures = Counter(
            "shipyard_model_load_failures_total",
            "Model versions that failed to load or warm.",
            ["version"],
            registry=registry,
        )

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
