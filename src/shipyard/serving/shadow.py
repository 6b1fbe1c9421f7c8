"""Shadow scoring in a process of its own, so a shadow candidate never competes with callers for the GIL.

The serving process only appends each sampled request to a list; every ``WINDOW_S`` the list goes to the
shadow process as one message. That process loads the shadow versions itself, scores each batch with one
model call per version, compares with the stable answers, and writes its comparisons to the store as
evidence rows of its own, which ``rollout status`` merges with everything else. Requests it cannot score
(the candidate does not load, or a batch breaks the comparison) are counted as dropped, with that reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from shipyard.errors import ShipyardError
from shipyard.rollouts.evidence import ShadowComparison

log = logging.getLogger("shipyard.serving")

WINDOW_S = 0.05
MAX_BATCHES_QUEUED = 64
FLUSH_EVERY_S = 0.5
LOAD_RETRY_S = 10.0


class ShadowItem(NamedTuple):
    """One sampled request, in plain data so it crosses the process boundary cheaply (and is cheap to make)."""

    endpoint: str
    rollout_id: str
    step: int
    classification: bool
    shadow_ref: str
    payload: Any
    primary: list[Any]
    request_id: str


class ShadowProcess:
    """The serving side: a bounded hand-off to a child process started on first use."""

    def __init__(self, settings_json: str, *, max_batches: int = MAX_BATCHES_QUEUED) -> None:
        self._settings_json = settings_json
        self._max_batches = max_batches
        self._queue: Any = None
        self._process: Any = None
        self.dropped = 0

    @property
    def pid(self) -> int | None:
        """The shadow process's id while it runs (operators and tests look at it)."""
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def submit(self, batch: list[ShadowItem]) -> bool:
        """Hand a batch over without waiting; False (and counted) when the child is behind."""
        if self._process is None or not self._process.is_alive():
            self._start()
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self.dropped += len(batch)
            return False
        return True

    def _start(self) -> None:
        import multiprocessing  # only servers that shadow pay for it

        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue(self._max_batches)
        self._process = context.Process(
            target=run_child, args=(self._settings_json, self._queue), name="shipyard-shadow", daemon=True
        )
        self._process.start()

    def close(self, timeout_s: float = 5.0) -> None:
        if self._process is None:
            return
        with contextlib.suppress(Exception):
            self._queue.put(None, timeout=timeout_s)
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout_s)
        self._process = None


def run_child(settings_json: str, inbox: Any) -> None:
    """The shadow process: score batches, compare, and flush comparisons to the store until told to stop."""
    from shipyard.config import Settings
    from shipyard.serving.evidence import EvidenceBook
    from shipyard.workspace import Workspace

    # Shadow scoring is background work: the scheduler should always prefer serving callers over it.
    with contextlib.suppress(OSError):
        os.nice(19)
    parent = os.getppid()
    workspace = Workspace(Settings.model_validate_json(settings_json))
    book = EvidenceBook()
    models: dict[str, Any] = {}
    last_flush = time.monotonic()
    try:
        while True:
            try:
                batch = inbox.get(timeout=FLUSH_EVERY_S)
            except queue.Empty:
                batch = []
            if batch is None or os.getppid() != parent:  # told to stop, or the server died (kill -9)
                break
            if batch:
                score(batch, models, workspace, book)
            if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                flush(book, workspace)
                last_flush = time.monotonic()
        flush(book, workspace)
    finally:
        workspace.close()


def flush(book: Any, workspace: Any) -> None:
    snapshots = book.dirty_snapshots()
    try:
        workspace.rollouts.record_evidence(book.worker, snapshots)
    except Exception:  # the store is down: keep the totals and send them next time
        book.restore(snapshots)
        log.exception("shadow process cannot flush comparisons")


def score(batch: list[ShadowItem], models: dict[str, Any], workspace: Any, book: Any) -> None:
    """Compare one batch: one model call per shadow version and payload form, falling back row by row.

    A group that cannot be scored (its version does not load, or the comparison raises) is counted as
    dropped for ``scoring_failed`` and logged once per distinct failure; the other groups are still scored.
    """
    groups: dict[tuple[str, str, int, bool], list[ShadowItem]] = {}
    for item in batch:
        key = (item.shadow_ref, item.rollout_id, item.step, hasattr(item.payload, "shape"))
        groups.setdefault(key, []).append(item)
    for (ref, rollout_id, step, _), items in groups.items():
        try:
            comparison = _compare(ref, items, models, workspace)
        except Exception as exc:  # one broken group must not lose the others, nor stop the process
            comparison = ShadowComparison.of_dropped("scoring_failed", len(items))
            _log_failure(ref, exc)
        book.add_shadow(rollout_id, step, comparison)


@dataclass(frozen=True, slots=True)
class _LoadFailure:
    """A shadow version that did not load: not tried again before ``retry_at`` (loading can be costly)."""

    error: Exception
    retry_at: float


_LOGGED: dict[str, str] = {}  # shadow version -> the last failure logged for it, so a lasting one is logged once


def _log_failure(ref: str, exc: Exception) -> None:
    message = f"{type(exc).__name__}: {exc}"
    if _LOGGED.get(ref) != message:
        _LOGGED[ref] = message
        log.error("shadow process cannot score %s; its sampled requests are counted as dropped: %s", ref, message)


def _compare(ref: str, items: list[ShadowItem], models: dict[str, Any], workspace: Any) -> ShadowComparison:
    """One group's comparison: one model call for its joined payloads (loading the version on first use)."""
    model = models.get(ref)
    if isinstance(model, _LoadFailure) and time.monotonic() < model.retry_at:
        raise model.error
    if model is None or isinstance(model, _LoadFailure):
        try:
            model = _load(workspace, ref)
        except ShipyardError as exc:
            models[ref] = _LoadFailure(exc, time.monotonic() + LOAD_RETRY_S)
            raise
        models[ref] = model
    start = time.perf_counter()
    outputs = _outputs(model, items, joined_payloads([i.payload for i in items]))
    latency_ms = (time.perf_counter() - start) * 1e3 / len(items)
    comparison = ShadowComparison.empty()
    for item, candidate in zip(items, outputs, strict=True):
        comparison = comparison.record(
            item.request_id, item.primary, candidate, latency_ms=latency_ms, classification=item.classification
        )
    return comparison


def _load(workspace: Any, ref: str) -> Any:
    from shipyard.core.inference import warm_rows

    version = workspace.registry.get(ref)
    model = workspace.registry.load(version)
    model.prefer_array_layout(warm_rows(version))
    return model


def _outputs(model: Any, items: list[ShadowItem], joined: tuple[Any, list[int]]) -> list[list[Any] | None]:
    batch, spans = joined
    if batch is not None:
        try:
            predictions = model.predict_batch(batch).predictions.tolist()
        except ShipyardError:
            predictions = None  # some request breaks it: score them one by one to know which
        if predictions is not None and spans and len(predictions) == spans[-1]:
            return [predictions[a:b] for a, b in zip([0, *spans[:-1]], spans, strict=True)]
    outputs: list[list[Any] | None] = []
    for item in items:
        try:
            outputs.append(model.predict_batch(item.payload).predictions.tolist())
        except ShipyardError:
            outputs.append(None)
    return outputs


def joined_payloads(payloads: list[Any]) -> tuple[Any, list[int]]:
    """All payloads as one batch (row objects concatenated, or matrices stacked), with each one's end row."""
    spans: list[int] = []
    if payloads and isinstance(payloads[0], np.ndarray):
        arrays = [np.atleast_2d(p) for p in payloads]
        for array in arrays:
            spans.append((spans[-1] if spans else 0) + len(array))
        try:
            return np.vstack(arrays), spans
        except ValueError:
            return None, spans
    rows: list[Any] = []
    for payload in payloads:
        if isinstance(payload, list):
            rows.extend(payload)
        elif isinstance(payload, dict):
            columns = {
                k: v.tolist() if isinstance(v, np.ndarray) else v if isinstance(v, list) else [v]
                for k, v in payload.items()
            }
            if len({len(v) for v in columns.values()}) != 1:
                return None, spans
            rows.extend(dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True))
        else:
            return None, spans
        spans.append(len(rows))
    return rows, spans
