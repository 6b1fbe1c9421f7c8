"""What a serving worker records about its traffic, off the request path.

The request path does one thing: append a tuple to a bounded list (or count a drop when the list is
full, never waiting). A background thread takes the whole list every ``flush_s`` (sooner when it fills)
and, per endpoint and version, turns it into columns once, then:

- counts the batch into the worker's live windows (service figures, input and output profiles in the
  reference profile's bins, data-quality counts), flushed to the store every ``profile_flush_s`` and
  kept in memory and retried while the store is unreachable;
- writes the sampled rows to the prediction log as one Parquet file per endpoint and day.

What a hard kill can lose is what has not reached a file yet: at most ``capacity`` records, counted
together across the waiting list and the batch being written (a clean shutdown writes everything).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from shipyard.core.signature import OutputKind
from shipyard.core.versions import ModelVersion
from shipyard.monitoring.columns import payload_columns
from shipyard.monitoring.dle import LossScorer
from shipyard.monitoring.outliers import OutlierScorer
from shipyard.monitoring.window import LiveWindow, Profiler, StoredWindow, WindowProfile, to_datetime, window_start
from shipyard.services.outliers import scorer_for
from shipyard.store.prediction_log import PredictionLog

log = logging.getLogger("shipyard.monitoring")

RECENT_REQUESTS = 50_000
"""Request ids this worker remembers (with the version and arm that served them) for joining feedback."""


class Record(NamedTuple):
    """One request as the request path hands it over: no work beyond building this tuple."""

    at: float
    endpoint: str
    version: ModelVersion | None
    arm: str
    inputs: Any
    prediction: Any
    request_id: str
    rows: int
    latency_s: float
    status: int
    logged: bool
    problem_feature: str | None = None


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    sample_rate: float = 1.0
    capacity: int = 10_000
    flush_s: float = 1.0
    window_s: int = 300
    profile_flush_s: float = 5.0


WindowSink = Callable[[Sequence[StoredWindow]], None]
"""Writes a batch of partial windows to the store (raises when the store is unreachable)."""


class Recorder:
    """One serving worker's prediction log writer and live-window profiler."""

    def __init__(
        self,
        config: RecorderConfig,
        *,
        log_store: PredictionLog | None,
        sink: WindowSink | None,
        on_drop: Callable[[str, int], None] | None = None,
        worker: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.log_store = log_store
        self.sink = sink
        self.on_drop = on_drop
        self.worker = worker or uuid.uuid4().hex[:12]
        self.clock = clock
        self.dropped = 0
        self.logged = 0
        self._pending: deque[Record] = deque()  # appends (event loop) and pops (drain thread) are atomic
        self._in_flight = 0
        self._wake_at = max(1, config.capacity // 2)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._windows: dict[tuple[str, str, float], LiveWindow] = {}
        self._dirty: set[tuple[str, str, float]] = set()
        self._drops: dict[str, int] = {}
        self._profilers: dict[str, Profiler] = {}
        self._scorers: dict[str, OutlierScorer | None] = {}
        self._loss_scorers: dict[str, LossScorer | None] = {}
        self._recent: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._lock = threading.RLock()  # guards windows and the recent map against readers
        self._drain_lock = threading.Lock()  # one drain at a time: the thread, a shutdown, or a report's sync
        self._last_profile_flush = time.monotonic()
        self._sample = config.sample_rate >= 1.0

    # -- the request path ------------------------------------------------------------------

    def add(
        self,
        endpoint: str,
        version: ModelVersion | None,
        *,
        arm: str,
        request_id: str,
        rows: int,
        latency_s: float,
        status: int,
        inputs: Any = None,
        prediction: Any = None,
        problem_feature: str | None = None,
    ) -> None:
        """Hand one request over; never blocks: when the buffer is full the record is dropped and counted.

        ``version`` and ``arm`` are those the request was routed to, also when it failed there (the model
        raised, or refused the input); both are empty only for a request refused before routing.
        """
        pending = self._pending
        if len(pending) + self._in_flight >= self.config.capacity:
            self.dropped += 1
            self._drops[endpoint] = self._drops.get(endpoint, 0) + 1
            return
        logged = self._sample or random.random() < self.config.sample_rate
        pending.append(
            Record(
                at=time.time(),
                endpoint=endpoint,
                version=version,
                arm=arm,
                inputs=inputs,
                prediction=prediction,
                request_id=request_id,
                rows=rows,
                latency_s=latency_s,
                status=status,
                logged=logged,
                problem_feature=problem_feature,
            )
        )
        if len(pending) == self._wake_at:
            self._wake.set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shipyard-recorder", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 30.0) -> None:
        """Write everything still in memory (clean shutdown loses nothing) and flush the windows."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.drain()
        self.flush_windows(force=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.flush_s)
            self._wake.clear()
            try:
                self.drain()
                if time.monotonic() - self._last_profile_flush >= self.config.profile_flush_s:
                    self.flush_windows()
            except Exception:  # the recorder must outlive any one bad batch; serving never depends on it
                log.exception("recording a batch of predictions failed")

    # -- the background work -----------------------------------------------------------------

    def drain(self) -> int:
        """Process everything pending now; returns how many records were taken."""
        with self._drain_lock:
            return self._drain()

    def sync(self) -> None:
        """Bring the store up to date with this worker's traffic so far (before a report is read)."""
        self.drain()
        self.flush_windows()

    def _drain(self) -> int:
        pending = self._pending
        batch = [pending.popleft() for _ in range(len(pending))]
        if not batch:
            self._count_drops()
            return 0
        self._in_flight = len(batch)
        try:
            self._process(batch)
        finally:
            self._in_flight = 0
        self._count_drops()
        return len(batch)

    def _count_drops(self) -> None:
        if not self._drops:
            return
        drops, self._drops = self._drops, {}
        for endpoint, n in drops.items():
            if self.on_drop is not None:
                self.on_drop(endpoint, n)
            key = (endpoint, "", window_start(self.clock(), self.config.window_s))
            with self._lock:
                window = self._windows.get(key)
                if window is None:
                    window = self._windows[key] = LiveWindow(None)
                window.dropped += n
                self._dirty.add(key)

    def _process(self, batch: list[Record]) -> None:
        groups: dict[tuple[str, str, float], list[Record]] = {}
        window_s = self.config.window_s
        for record in batch:
            version = record.version
            key = (record.endpoint, version.ref if version is not None else "", record.at - record.at % window_s)
            group = groups.get(key)
            if group is None:
                groups[key] = [record]
            else:
                group.append(record)
        log_tables: dict[tuple[str, Any], list[pa.Table]] = {}
        for key, records in groups.items():
            with self._lock:
                window = self._windows.get(key)
                if window is None:
                    version = records[0].version
                    window = self._windows[key] = LiveWindow(self._profiler(version) if version is not None else None)
                table = self._profile(window, records)
                self._dirty.add(key)
            if table is not None:
                day = to_datetime(key[2]).date()
                log_tables.setdefault((key[0], day), []).append(table)
        for (endpoint, day), tables in log_tables.items():
            if self.log_store is None:
                continue
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
            self.log_store.write(endpoint, day, table)
            self.logged += table.num_rows

    def _profile(self, window: LiveWindow, records: list[Record]) -> pa.Table | None:
        """Count one endpoint version's records into its live window; returns their log rows, if any sampled."""
        served = [r for r in records if r.prediction is not None and r.status < 400]
        latencies = np.fromiter((r.latency_s for r in served), dtype=np.float64, count=len(served)) * 1e3
        window.add_requests(
            {str(status): n for status, n in Counter(r.status for r in records).items()},
            latencies,
            Counter(r.arm for r in records if r.arm),  # an arm that only failed still took traffic
            Counter(r.problem_feature for r in records if r.problem_feature is not None),
        )
        version = records[0].version
        if not served or version is None:
            return None
        columns = payload_columns([r.inputs for r in served], version.signature.names)
        predictions = _stacked([r.prediction.predictions for r in served], 1)
        probabilities = None
        if all(r.prediction.probabilities is not None for r in served):
            probabilities = _stacked([r.prediction.probabilities for r in served], 2)
        rows = np.fromiter((r.rows for r in served), dtype=np.int64, count=len(served))
        complete = columns is not None and int(rows.sum()) == len(predictions)
        scores = None
        if columns is not None and complete:
            window.add_rows(columns, predictions, probabilities)
            scorer = self._scorer(version)
            if scorer is not None:
                scores = scorer.score(columns, len(predictions))
                window.add_outlier_scores(scores, scorer.threshold)
            losses = self._loss_scorer(version)
            if losses is not None:  # a regressor's estimated errors, for its label-free MAE and RMSE (DLE)
                window.add_losses(losses.summary(columns, predictions))
        else:
            window.add_unprofiled_rows(len(predictions))
        self._remember(served, version.ref)
        logged = np.fromiter((r.logged for r in served), dtype=bool, count=len(served))
        if not logged.any() or columns is None or not complete:
            return None
        try:
            return _log_table(served, rows, logged, columns, predictions, probabilities, version, outlier_scores=scores)
        except (pa.ArrowException, ValueError, TypeError):  # the window still counts; the log says what broke
            log.exception("could not build prediction log rows for %s", version.ref)
            return None

    def _profiler(self, version: ModelVersion) -> Profiler:
        profiler = self._profilers.get(version.ref)
        if profiler is None:
            profiler = self._profilers[version.ref] = Profiler(
                version.signature, version.reference_profile, calibrator=version.confidence_calibrator
            )
        return profiler

    def _scorer(self, version: ModelVersion) -> OutlierScorer | None:
        """The version's outlier scorer, built once (a forest read once); None when it has no outlier model."""
        if version.ref not in self._scorers:
            self._scorers[version.ref] = scorer_for(version)
        return self._scorers[version.ref]

    def _loss_scorer(self, version: ModelVersion) -> LossScorer | None:
        """The version's loss model with its trees compiled once; None for a version without one."""
        if version.ref not in self._loss_scorers:
            model = version.loss_model
            self._loss_scorers[version.ref] = LossScorer(model) if model is not None else None
        return self._loss_scorers[version.ref]

    def _remember(self, served: list[Record], ref: str) -> None:
        with self._lock:
            recent = self._recent
            recent.update((r.request_id, (ref, r.arm)) for r in served)
            while len(recent) > RECENT_REQUESTS:
                recent.popitem(last=False)

    def served_by(self, request_id: str) -> tuple[str, str] | None:
        """(version, arm) of a request this worker served recently, for feedback that arrives soon after."""
        with self._lock:
            return self._recent.get(request_id)

    # -- windows -----------------------------------------------------------------------------

    def flush_windows(self, *, force: bool = False) -> bool:
        """Upsert this worker's changed windows; on failure keep them and try again next time."""
        self._last_profile_flush = time.monotonic()
        if self.sink is None:
            return True
        with self._lock:
            keys = sorted(self._dirty)
            rows = [
                StoredWindow(
                    endpoint,
                    version,
                    to_datetime(start),
                    self.config.window_s,
                    self.worker,
                    self._windows[(endpoint, version, start)].snapshot().to_dict(),
                )
                for endpoint, version, start in keys
            ]
            # Clean as of this snapshot: a batch the drain adds while the sink writes marks its window dirty
            # again (clearing the marks after the write lost such a batch until more traffic came).
            self._dirty.difference_update(keys)
        if not rows:
            return True
        try:
            self.sink(rows)
        except Exception as exc:
            with self._lock:
                self._dirty.update(keys)
            log.warning("could not flush %d monitoring windows to the store (kept, will retry): %s", len(rows), exc)
            return False
        current = window_start(self.clock(), self.config.window_s)
        with self._lock:
            # A window that finished before the previous one reached the store and is no longer needed in memory.
            # The one just finished stays a window longer: a request answered just before the boundary can be
            # drained after it, and a window made afresh for it would replace this worker's stored totals.
            for key in keys:
                if key[2] < current - self.config.window_s and key not in self._dirty:
                    self._windows.pop(key, None)
        return True

    def windows(self) -> Mapping[tuple[str, str, float], WindowProfile]:
        """This worker's windows still in memory, as profiles."""
        with self._lock:
            return {key: window.snapshot() for key, window in self._windows.items()}


def _stacked(arrays: list[np.ndarray], ndim: int) -> np.ndarray:
    """Many requests' outputs as one array, without a NumPy call per request when shapes already agree."""
    if all(a.ndim == ndim for a in arrays):
        return np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    shape = np.atleast_1d if ndim == 1 else np.atleast_2d
    return np.concatenate([shape(a) for a in arrays])


def _log_table(
    served: list[Record],
    rows: np.ndarray,
    logged: np.ndarray,
    columns: Mapping[str, np.ndarray],
    predictions: np.ndarray,
    probabilities: np.ndarray | None,
    version: ModelVersion,
    *,
    outlier_scores: np.ndarray | None = None,
) -> pa.Table:
    """The sampled requests' rows: one row per input row, with its request id and row index (and its outlier
    score, ``_outlier_score``, when the version has an outlier model: log files without it read as null)."""
    starts = np.cumsum(rows) - rows
    request_of_row = np.repeat(np.arange(len(served)), rows)
    keep = logged[request_of_row]
    every = bool(keep.all())
    index = np.arange(len(request_of_row)) if every else np.flatnonzero(keep)
    owner = request_of_row[index]
    row_in_request = index - starts[owner]
    ids = np.asarray([r.request_id for r in served], dtype=object)[owner]
    at = np.fromiter((r.at for r in served), dtype=np.float64, count=len(served))[owner]
    latency = np.fromiter((r.latency_s for r in served), dtype=np.float64, count=len(served))[owner] * 1e3
    arms = np.asarray([r.arm for r in served], dtype=object)[owner]
    n = len(index)
    data: dict[str, Any] = {
        "_request_id": pa.array(ids, pa.string()),
        "_row": pa.array(row_in_request, pa.int32()),
        "_endpoint": pa.array([served[0].endpoint] * n, pa.string()),
        "_version": pa.array([version.ref] * n, pa.string()),
        "_arm": pa.array(arms, pa.string()),
        "_served_at": pa.array((at * 1e6).astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC")),
        "_latency_ms": pa.array(latency, pa.float64()),
    }
    for name, values in columns.items():
        if name not in data:
            data[name] = _arrow(np.asarray(values) if every else np.asarray(values)[index])
    chosen = predictions if every else predictions[index]
    if version.signature.output.kind is OutputKind.CLASSIFICATION or chosen.dtype.kind in "OUSb":
        data["_prediction"] = pa.array(chosen.astype(str).astype(object), pa.string())
    elif chosen.ndim == 1:
        data["_prediction"] = pa.array(chosen.astype(np.float64), pa.float64())
    else:
        data["_prediction"] = pa.array(chosen.reshape(len(chosen), -1).tolist(), pa.list_(pa.float64()))
    if probabilities is not None:
        chosen_proba = np.ascontiguousarray((probabilities if every else probabilities[index]), dtype=np.float64)
        data["_probabilities"] = pa.FixedSizeListArray.from_arrays(
            pa.array(chosen_proba.ravel()), chosen_proba.shape[1]
        ).cast(pa.list_(pa.float64()))
    if outlier_scores is not None:
        data["_outlier_score"] = pa.array(outlier_scores if every else outlier_scores[index], pa.float64())
    return pa.table(data)


def _arrow(values: np.ndarray) -> pa.Array:
    if values.dtype.kind in "fiub":
        return pa.array(values)
    try:
        return pa.array(values.tolist())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values.tolist()], pa.string())
