"""Per-worker rollout evidence: cheap mutable counters on the request path, snapshots for the store.

The core's ``ArmEvidence`` is immutable (every record copies it); a request must cost a few increments,
so each worker keeps running totals here and the refresher upserts snapshots of them, one row per
(rollout, step, arm, worker), which the controller merges.
"""

from __future__ import annotations

import bisect
import os
import socket
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from shipyard.core.evidence import LATENCY_EDGES_MS, ArmEvidence, LatencyHistogram, ShadowComparison

_BUCKETS = len(LATENCY_EDGES_MS) + 1


def worker_id() -> str:
    """Unique per process (and per replica), stable for its life: the key of its evidence rows."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ArmCounter:
    """Running totals for one arm of one rollout step in this worker."""

    __slots__ = ("buckets", "dirty", "errors", "predictions", "requests", "sum_ms")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.buckets = [0] * _BUCKETS
        self.sum_ms = 0.0
        self.predictions: dict[str, int] = {}
        self.dirty = False

    def record(self, latency_ms: float, *, error: bool, keys: Iterable[str] = ()) -> None:
        self.requests += 1
        self.errors += error
        self.buckets[bisect.bisect_left(LATENCY_EDGES_MS, latency_ms)] += 1
        self.sum_ms += latency_ms
        for key in keys:
            self.predictions[key] = self.predictions.get(key, 0) + 1
        self.dirty = True

    def snapshot(self) -> ArmEvidence:
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

    def counter(self, rollout_id: str, step: int, arm: str) -> ArmCounter:
        key = (rollout_id, step, arm)
        found = self._arms.get(key)
        if found is None:
            found = self._arms[key] = ArmCounter()
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
