"""The Recorder used directly, with no server: bounded buffer, drops, failing store, several workers.

A real iris model makes the predictions and a real SQLite workspace is the store; the only injected
faults are a store that refuses writes for a while and a disk that stalls while a batch is written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from functools import cache
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from shipyard.core.versions import ModelVersion
from shipyard.errors import StoreError
from shipyard.flavors.loaded import LoadedModel, Prediction
from shipyard.monitoring.window import StoredWindow
from shipyard.serving.recorder import Recorder, RecorderConfig
from shipyard.store.prediction_log import PredictionLog
from shipyard.workspace import Workspace
from tests.models import iris

FEATURES = ("f0", "f1", "f2", "f3")


class Traffic:
    """Requests to the iris model as the request path hands them to the recorder."""

    def __init__(self, version: ModelVersion, model: LoadedModel) -> None:
        self.version = version
        self.model = model
        self._predict: Callable[[int, int], Prediction] = cache(self._prediction)

    def rows(self, start: int, n: int) -> list[dict[str, float]]:
        x = iris()[0]
        return [dict(zip(FEATURES, map(float, x[(start + k) % len(x)]), strict=True)) for k in range(n)]

    def _prediction(self, start: int, n: int) -> Prediction:
        return self.model.predict_batch(self.rows(start, n))

    def send(self, recorder: Recorder, i: int, *, rows: int = 1, endpoint: str = "iris", status: int = 200) -> None:
        payload = self.rows(i, rows)
        prediction = self._predict(i % 150, rows) if status < 400 else None
        recorder.add(
            endpoint,
            self.version,
            arm="stable",
            inputs=payload,
            prediction=prediction,
            request_id=f"r{i}",
            rows=rows,
            latency_s=0.002,
            status=status,
        )


@pytest.fixture
def traffic(sqlite_workspace: Workspace) -> Traffic:
    x, _, model = iris()
    version = sqlite_workspace.registry.register(model, name="iris", sample_input=x[:20], training_data=x)
    sqlite_workspace.endpoints.create("iris", model="iris:1")
    return Traffic(version, sqlite_workspace.registry.load(version))


def recorder_for(workspace: Workspace, sink: Any = None, *, worker: str | None = None, **options: Any) -> Recorder:
    """A recorder over the workspace's real log and window store; nothing is flushed unless the test says so."""
    config = RecorderConfig(**{"flush_s": 300.0, "profile_flush_s": 300.0, **options})
    return Recorder(
        config,
        log_store=workspace.prediction_log,
        sink=workspace.monitoring.store_windows if sink is None else sink,
        worker=worker,
    )


def logged_ids(workspace: Workspace, endpoint: str = "iris") -> list[str]:
    return workspace.prediction_log.query(endpoint, columns=["_request_id"]).column("_request_id").to_pylist()


def operational(workspace: Workspace, endpoint: str = "iris") -> dict[str, Any]:
    versions = workspace.monitoring.report(endpoint, window="1h").to_dict()["versions"]
    return versions[0]["operational"] if versions else {"requests": 0, "rows": 0}


def test_full_buffer_drops_and_counts_records_and_add_never_waits(
    sqlite_workspace: Workspace, traffic: Traffic
) -> None:
    drops: list[tuple[str, int]] = []
    recorder = Recorder(
        RecorderConfig(capacity=100, flush_s=300.0, profile_flush_s=300.0),
        log_store=sqlite_workspace.prediction_log,
        sink=sqlite_workspace.monitoring.store_windows,
        on_drop=lambda endpoint, n: drops.append((endpoint, n)),
    )
    # No background thread: nothing ever empties the buffer, yet every call returns at once.
    started = time.perf_counter()
    for i in range(1000):
        traffic.send(recorder, i)
    assert time.perf_counter() - started < 2.0
    assert recorder.dropped == 900
    assert recorder.drain() == 100
    assert sorted(logged_ids(sqlite_workspace)) == sorted(f"r{i}" for i in range(100))  # the newest were dropped
    assert drops == [("iris", 900)]
    for i in range(1000, 1050):  # room again once the batch is written
        traffic.send(recorder, i)
    assert recorder.dropped == 900
    recorder.close()
    report = sqlite_workspace.monitoring.report("iris", window="1h")
    assert report.unrouted.dropped == 900
    assert report.versions[0].operational.requests == 150
    assert len(logged_ids(sqlite_workspace)) == 150


class StallingLog(PredictionLog):
    """A prediction log on a disk that stalls: each write waits until the test lets it go on."""

    def __init__(self, artifact_uri: str) -> None:
        super().__init__(artifact_uri)
        self.writing = threading.Event()
        self.go_on = threading.Event()

    def write(self, endpoint: str, day: date, table: pa.Table) -> str:
        self.writing.set()
        assert self.go_on.wait(10), "the test never let the write go on"
        return super().write(endpoint, day, table)


def test_capacity_counts_the_batch_being_written_as_well_as_the_waiting_records(
    sqlite_workspace: Workspace, traffic: Traffic
) -> None:
    stalling = StallingLog(sqlite_workspace.settings.artifact_uri)
    recorder = Recorder(
        RecorderConfig(capacity=100, flush_s=300.0, profile_flush_s=300.0), log_store=stalling, sink=None
    )
    for i in range(60):
        traffic.send(recorder, i)
    drain = threading.Thread(target=recorder.drain)
    drain.start()
    try:
        assert stalling.writing.wait(10)
        for i in range(60, 160):  # 60 records are in flight: only 40 more fit
            traffic.send(recorder, i)
        assert recorder.dropped == 60
    finally:
        stalling.go_on.set()
        drain.join(10)
    assert recorder.drain() == 40
    # What a hard kill could have lost at the worst moment never exceeded the capacity of 100.
    assert sorted(logged_ids(sqlite_workspace)) == sorted(f"r{i}" for i in range(100))


def test_clean_close_writes_every_pending_record_and_window(sqlite_workspace: Workspace, traffic: Traffic) -> None:
    recorder = recorder_for(sqlite_workspace, capacity=10_000)
    recorder.start()
    for i in range(500):
        traffic.send(recorder, i, rows=2)
    recorder.close()
    ids = logged_ids(sqlite_workspace)
    assert len(ids) == 1000 and set(ids) == {f"r{i}" for i in range(500)}
    assert operational(sqlite_workspace)["requests"] == 500
    assert operational(sqlite_workspace)["rows"] == 1000


def test_sampling_logs_whole_requests_and_the_window_still_counts_every_request(
    sqlite_workspace: Workspace, traffic: Traffic
) -> None:
    recorder = recorder_for(sqlite_workspace, sample_rate=0.5)
    for i in range(400):
        traffic.send(recorder, i, rows=2)
    recorder.close()
    table = sqlite_workspace.prediction_log.query("iris", columns=["_request_id", "_row"]).to_pylist()
    requests = {r["_request_id"] for r in table}
    assert 150 <= len(requests) <= 250  # Binomial(400, 0.5): mean 200, sd 10; a 5 sd band
    assert sorted((r["_request_id"], r["_row"]) for r in table) == sorted((r, k) for r in requests for k in (0, 1))
    assert recorder.logged == len(table)
    assert operational(sqlite_workspace)["requests"] == 400


def test_refused_requests_are_counted_but_not_logged(sqlite_workspace: Workspace, traffic: Traffic) -> None:
    recorder = recorder_for(sqlite_workspace)
    traffic.send(recorder, 0)
    traffic.send(recorder, 1, status=422)
    recorder.close()
    assert logged_ids(sqlite_workspace) == ["r0"]
    figures = operational(sqlite_workspace)
    assert figures["requests"] == 2 and figures["errors"] == {"422": 1}


class Outage:
    """The real window sink behind a switch: while ``down``, every write fails as an unreachable store's would."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.down = True
        self.refused = 0

    def __call__(self, rows: Sequence[StoredWindow]) -> None:
        if self.down:
            self.refused += 1
            raise StoreError("cannot reach the control-plane store: connection refused")
        self.workspace.monitoring.store_windows(rows)


def test_windows_are_kept_while_the_store_is_unreachable_and_written_after_it_recovers(
    sqlite_workspace: Workspace, traffic: Traffic
) -> None:
    outage = Outage(sqlite_workspace)
    recorder = recorder_for(sqlite_workspace, sink=outage)
    for i in range(30):
        traffic.send(recorder, i)
    recorder.drain()
    assert recorder.flush_windows() is False
    assert sum(w.requests for w in recorder.windows().values()) == 30
    for i in range(30, 50):
        traffic.send(recorder, i)
    recorder.drain()
    assert recorder.flush_windows() is False and outage.refused == 2
    assert operational(sqlite_workspace)["requests"] == 0
    assert len(logged_ids(sqlite_workspace)) == 50  # the log does not wait for the store
    outage.down = False
    assert recorder.flush_windows() is True
    assert operational(sqlite_workspace)["requests"] == 50
    assert recorder.flush_windows() is True
    assert operational(sqlite_workspace)["requests"] == 50  # nothing counted twice


def test_the_background_thread_outlives_a_failing_store_and_catches_up(
    sqlite_workspace: Workspace, traffic: Traffic
) -> None:
    outage = Outage(sqlite_workspace)
    recorder = recorder_for(sqlite_workspace, sink=outage, flush_s=0.02, profile_flush_s=0.02)
    recorder.start()
    try:
        for i in range(40):
            traffic.send(recorder, i)
        deadline = time.monotonic() + 10
        while outage.refused < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert outage.refused >= 3
        outage.down = False
        while operational(sqlite_workspace)["requests"] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert operational(sqlite_workspace)["requests"] == 40
    finally:
        recorder.close()


def test_windows_of_two_workers_upserted_into_one_store_add_up(sqlite_workspace: Workspace, traffic: Traffic) -> None:
    first = recorder_for(sqlite_workspace, worker="worker-a")
    second = recorder_for(sqlite_workspace, worker="worker-b")
    for i in range(30):
        traffic.send(first, i)
    for i in range(30, 80):
        traffic.send(second, i, rows=2)
    for recorder in (first, second):
        recorder.drain()
        assert recorder.flush_windows() is True
    figures = operational(sqlite_workspace)
    assert (figures["requests"], figures["rows"]) == (80, 130)
    for i in range(80, 90):  # the first worker's window grows: its stored row is replaced, not added again
        traffic.send(first, i)
    first.drain()
    first.flush_windows()
    figures = operational(sqlite_workspace)
    assert (figures["requests"], figures["rows"]) == (90, 140)
    with sqlite_workspace.db.read() as conn:
        workers = conn.execute(sa.text("SELECT DISTINCT worker FROM monitor_windows ORDER BY worker")).scalars().all()
    assert workers == ["worker-a", "worker-b"]


def test_a_request_drained_after_its_window_was_flushed_adds_to_the_stored_totals(
    sqlite_workspace: Workspace, traffic: Traffic
) -> None:
    """Answered just before a window's end, drained just after: a window made afresh for it would replace this
    worker's stored totals for the window with its one request."""
    after_the_boundary = time.time() + 300
    recorder = Recorder(
        RecorderConfig(flush_s=300.0, profile_flush_s=300.0, window_s=300),
        log_store=sqlite_workspace.prediction_log,
        sink=sqlite_workspace.monitoring.store_windows,
        clock=lambda: after_the_boundary,
    )
    for i in range(20):
        traffic.send(recorder, i)
    assert recorder.drain() == 20 and recorder.flush_windows() is True
    traffic.send(recorder, 20)
    assert recorder.drain() == 1 and recorder.flush_windows() is True
    assert operational(sqlite_workspace)["requests"] == 21


def test_a_batch_drained_while_the_windows_are_written_is_flushed_next_time(
    sqlite_workspace: Workspace, traffic: Traffic
) -> None:
    """The drain thread and a flush run side by side: a batch counted while the store writes the snapshot is
    not in it, so its window must stay marked for the next flush."""
    recorder: Recorder

    def store_while_traffic_arrives(rows: Sequence[StoredWindow]) -> None:
        traffic.send(recorder, 20)
        assert recorder.drain() == 1
        sqlite_workspace.monitoring.store_windows(rows)

    recorder = recorder_for(sqlite_workspace, store_while_traffic_arrives)
    for i in range(20):
        traffic.send(recorder, i)
    assert recorder.drain() == 20 and recorder.flush_windows() is True
    assert operational(sqlite_workspace)["requests"] == 20
    recorder.sink = sqlite_workspace.monitoring.store_windows
    assert recorder.flush_windows() is True
    assert operational(sqlite_workspace)["requests"] == 21
