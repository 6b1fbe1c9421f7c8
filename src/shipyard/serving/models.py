"""Loaded, warmed models for serving: each artifact loaded once, however many endpoints use it."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from shipyard.core.inference import warm_rows
from shipyard.core.signature import FeatureType
from shipyard.core.versions import ModelVersion
from shipyard.errors import ModelLoadError, ShipyardError
from shipyard.flavors.base import Predictor
from shipyard.flavors.loaded import LoadedModel
from shipyard.services.registry import RegistryService
from shipyard.serving.metrics import ServingMetrics

log = logging.getLogger("shipyard.serving")

# A model whose one-row call takes less than this runs on the event loop: handing it to a thread
# would cost more than the call itself. Slower models run in the thread pool so the loop stays free.
INLINE_CALL_LIMIT_S = 0.002


@dataclass(frozen=True, slots=True, eq=False)
class ServedModel:
    """One version ready to serve: loaded, warmed, with its call mode decided."""

    version: ModelVersion
    model: LoadedModel
    inline: bool
    load_seconds: float
    warm_call_ms: float
    categorical: tuple[tuple[str, frozenset[Any]], ...] = field(default=())

    @property
    def ref(self) -> str:
        return self.version.ref


class ModelCache:
    """Predictors by artifact sha256; a version is served only after a successful warm-up."""

    def __init__(self, registry: RegistryService, metrics: ServingMetrics) -> None:
        self.registry = registry
        self.metrics = metrics
        self._predictors: dict[str, Predictor] = {}
        self._lock = threading.Lock()

    def serve(self, version: ModelVersion, *, strict: bool) -> ServedModel:
        """Load (or reuse) and warm ``version``; raises ModelLoadError when it cannot serve."""
        start = time.perf_counter()
        predictor = self._predictor(version)
        model = LoadedModel(version, predictor, strict=strict)
        rows = warm_rows(version)
        timings = []
        try:
            model.predict_batch(rows)
            model.prefer_array_layout(rows)
            for row in rows[:1] * 5:
                t0 = time.perf_counter()
                model.predict_batch([row])
                timings.append(time.perf_counter() - t0)
        except ShipyardError as exc:
            self.metrics.load_failures.labels(version.ref).inc()
            raise ModelLoadError(f"{version.ref} failed its warm-up prediction: {exc}") from exc
        call_s = statistics.median(timings)
        load_s = time.perf_counter() - start
        self.metrics.model_load_seconds.labels(version.ref).set(load_s)
        categorical = tuple(
            (f.name, frozenset(f.categories))
            for f in version.signature.features
            if f.categories and f.type is FeatureType.STRING
        )
        log.info("loaded %s in %.3fs (one-row call %.3f ms)", version.ref, load_s, call_s * 1e3)
        return ServedModel(version, model, call_s < INLINE_CALL_LIMIT_S, load_s, call_s * 1e3, categorical)

    def _predictor(self, version: ModelVersion) -> Predictor:
        key = f"{version.sha256}:{version.flavor}"
        with self._lock:
            cached = self._predictors.get(key)
        if cached is not None:
            return cached
        try:
            predictor = self.registry.load(version).predictor
        except ShipyardError:
            self.metrics.load_failures.labels(version.ref).inc()
            raise
        with self._lock:
            return self._predictors.setdefault(key, predictor)

    def retain(self, versions: list[ModelVersion]) -> None:
        """Forget predictors no served version uses any more, so swapped-out models free memory."""
        keep = {f"{v.sha256}:{v.flavor}" for v in versions}
        with self._lock:
            for key in [k for k in self._predictors if k not in keep]:
                del self._predictors[key]
