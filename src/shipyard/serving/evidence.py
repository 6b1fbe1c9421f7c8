"""Per-worker rollout evidence: cheap mutable counters on the request path, snapshots for the store.

The core's ``ArmEvidence`` is immutable (every record copies it); a request must cost a few increments,
so each worker keeps running totals here and the refresher upserts snapshots of them, one row per
(rollout, step, arm, worker), which the controller merges.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.core.histograms import LATENCY_EDGES_MS, LatencyHistogram
from shipyard.rollouts.evidence import ArmEvidence, ShadowComparison, prediction_keys

_BUCKETS = len(LATENCY_EDGES_MS) + 1


def worker_id() -> str:
    """Unique per process (and per replica), stable for its life: the key of its evidence rows."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ArmCounter:
    """Running totals for one arm of one rollout step in this worker.

    The request path only appends (latency, error, predictions) to a deque; binning latencies and
    counting prediction keys happen vectorised when the refresher takes a snapshot, once a second.
    A deque, because appends (event loop) and pops (the snapshot's thread) are each atomic.
    """

    __slots__ = (
        "buckets",
        "classification",
        "dirty",
        "edges",
        "errors",
        "pending",
        "predictions",
        "requests",
        "sum_ms",
    )

    def __init__(self, *, classification: bool = True, edges: Sequence[float] | None = None) -> None:
        self.requests = 0
        self.errors = 0
        self.buckets = [0] * _BUCKETS
        self.sum_ms = 0.0
        self.predictions: dict[str, int] = {}
        self.dirty = False
        self.classification = classification
        self.edges = edges
        self.pending: deque[tuple[float, bool, Any]] = deque()

    def add(self, latency_ms: float, error: bool, predictions: Any = None) -> None:
        """The request path's whole cost: one append (predictions are the served batch's array, or None)."""
        self.pending.append((latency_ms, error, predictions))
        self.dirty = True

    def record(self, latency_ms: float, *, error: bool, keys: Iterable[str] = ()) -> None:
        """Count one request at once, with its prediction keys already computed."""
        self._count([latency_ms], errors=int(error))
        for key in keys:
            self.predictions[key] = self.predictions.get(key, 0) + 1
        self.dirty = True

    def fold(self) -> None:
        """Count everything appended since the last fold."""
        pending = self.pending
        taken = [pending.popleft() for _ in range(len(pending))]
        if not taken:
            return
        self._count([t[0] for t in taken], errors=sum(1 for t in taken if t[1]))
        arrays = [np.atleast_1d(t[2]) for t in taken if t[2] is not None]
        if arrays and (self.classification or self.edges is not None):
            values = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
            for key, n in Counter(prediction_keys(values, edges=self.edges)).items():
                self.predictions[key] = self.predictions.get(key, 0) + n

    def _count(self, latencies_ms: list[float], *, errors: int) -> None:
        values = np.asarray(latencies_ms, dtype=np.float64)
        for index, n in zip(
            *np.unique(np.searchsorted(LATENCY_EDGES_MS, values, side="left"), return_counts=True), strict=True
        ):
            self.buckets[int(index)] += int(n)
        self.requests += len(latencies_ms)
        self.errors += errors
        self.sum_ms += float(values.sum())

    def snapshot(self) -> ArmEvidence:
        self.fold()
        return ArmEvidence(
            self.requests, self.errors, LatencyHistogram(tuple(self.buckets), self.sum_ms), dict(self.predictions)
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    rollout_id: str
    step: int
    arm: str
    evidence: ArmEvidence | ShadowComparison


class EvidenceBook:
    """Every arm counter of this worker, and its shadow comparisons, until they are flushed."""

    def __init__(self) -> None:
        self.worker = worker_id()
        self._arms: dict[tuple[str, int, str], ArmCounter] = {}
        self._shadow: dict[tuple[str, int], ShadowComparison] = {}
        self._shadow_dirty: set[tuple[str, int]] = set()
        self._lock = threading.Lock()  # shadow comparisons are recorded from worker threads

    def counter(
        self, rollout_id: str, step: int, arm: str, *, classification: bool = True, edges: Sequence[float] | None = None
    ) -> ArmCounter:
        key = (rollout_id, step, arm)
        found = self._arms.get(key)
        if found is None:
            found = self._arms[key] = ArmCounter(classification=classification, edges=edges)
        return found

    def add_shadow(self, rollout_id: str, step: int, comparison: ShadowComparison) -> None:
        key = (rollout_id, step)
        with self._lock:
            current = self._shadow.get(key)
            self._shadow[key] = comparison if current is None else current.merge(comparison)
            self._shadow_dirty.add(key)

    def dirty_snapshots(self) -> list[Snapshot]:
        """Snapshots of what changed since the last call (the totals themselves keep growing)."""
        out: list[Snapshot] = []
        for (rollout_id, step, arm), counter in list(self._arms.items()):
            if counter.dirty:
                counter.dirty = False
                out.append(Snapshot(rollout_id, step, arm, counter.snapshot()))
        with self._lock:
            for key in self._shadow_dirty:
                out.append(Snapshot(key[0], key[1], "shadow_compare", self._shadow[key]))
            self._shadow_dirty.clear()
        return out

    def restore(self, snapshots: list[Snapshot]) -> None:
        """Mark what a failed flush carried as unsent again; the totals themselves were never lost."""
        for snap in snapshots:
            if snap.arm == "shadow_compare":
                with self._lock:
                    self._shadow_dirty.add((snap.rollout_id, snap.step))
            else:
                counter = self._arms.get((snap.rollout_id, snap.step, snap.arm))
                if counter is not None:
                    counter.dirty = True

    def forget(self, keep: set[str]) -> None:
        """Drop counters of rollouts no longer active, so finished rollouts do not pile up."""
        for key in [k for k in self._arms if k[0] not in keep]:
            del self._arms[key]
        with self._lock:
            for shadow_key in [k for k in self._shadow if k[0] not in keep]:
                del self._shadow[shadow_key]
                self._shadow_dirty.discard(shadow_key)
