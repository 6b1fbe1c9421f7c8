"""The prediction log of a real server: every served prediction in plain Parquet, queryable with DuckDB.

Requests go over HTTP to a uvicorn on 127.0.0.1 (in a thread, or a real ``shipyard serve`` process for
the hard-kill test); the log is read back through ``PredictionLog`` and, to show the files are plain
Parquet anyone can read, with DuckDB's own ``read_parquet`` and with pyarrow.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from shipyard.config import Settings
from shipyard.store.prediction_log import PredictionLog
from shipyard.workspace import Workspace
from tests.models import churn_frame, churn_pipeline, iris, regression
from tests.serving_support import free_port, running_server, wait_ready

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
IRIS = ("f0", "f1", "f2", "f3")
PART = re.compile(r"endpoint=(?P<endpoint>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/part-[^/]+\.parquet$")


def iris_rows(start: int, n: int) -> list[dict[str, float]]:
    x = iris()[0]
    return [dict(zip(IRIS, map(float, x[(start + k) % len(x)]), strict=True)) for k in range(n)]


@pytest.fixture
def fast(tmp_path: Path) -> Settings:
    """SQLite store; the log flushed every 50 ms so tests read it while the server runs."""
    return Settings(home=tmp_path, poll_interval_s=0.2, log_flush_s=0.05, monitor_flush_s=0.1)


def open_workspace(settings: Settings) -> Workspace:
    workspace = Workspace(settings)
    x, y, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20], training_data=x, training_target=y)
    workspace.endpoints.create("iris", model="iris:1")
    return workspace


@pytest.fixture
def served(fast: Settings) -> Iterator[tuple[str, Workspace]]:
    """iris (3 classes), churn (strings and numbers) and a regressor, served."""
    workspace = open_workspace(fast)
    frame, _ = churn_frame()
    workspace.registry.register(churn_pipeline(), name="churn", sample_input=frame.head(40), training_data=frame)
    workspace.endpoints.create("churn", model="churn:1")
    x, _, model = regression()
    workspace.registry.register(model, name="reg", sample_input=x[:20], training_data=x)
    workspace.endpoints.create("reg", model="reg:1")
    try:
        with running_server(fast, workspace) as url:
            yield url, workspace
    finally:
        workspace.close()


def wait_for_rows(log: PredictionLog, endpoint: str, n: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    """The endpoint's log rows once at least ``n`` are there (the server writes them in the background)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = log.query(endpoint).to_pylist()
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def raw_sql(sql: str) -> list[tuple[Any, ...]]:
    """DuckDB on its own, knowing nothing of Shipyard."""
    import duckdb

    connection = duckdb.connect()
    try:
        return connection.sql(sql).fetchall()
    finally:
        connection.close()


def report(url: str, endpoint: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/v1/endpoints/{endpoint}/monitoring", params={"window": "1h"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_served_prediction_is_logged_with_its_request_id_version_inputs_and_outputs(
    served: tuple[str, Workspace],
) -> None:
    url, workspace = served
    before = datetime.now(UTC)
    answers = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(25):
            row = iris_rows(i * 6, 1)[0]
            response = client.post("/v1/endpoints/iris/predict", json={"instances": [row]})
            assert response.status_code == 200
            answers.append((row, response.json()))
        refused = client.post("/v1/endpoints/iris/predict", json={"instances": [{"f0": 1.0}]})
        assert refused.status_code == 422
    after = datetime.now(UTC)
    rows = {r["_request_id"]: r for r in wait_for_rows(workspace.prediction_log, "iris", 25)}
    assert set(rows) == {body["request_id"] for _, body in answers}  # all served, and the refused one not
    for sent, body in answers:
        logged = rows[body["request_id"]]
        assert (logged["_endpoint"], logged["_version"], logged["_arm"], logged["_row"]) == (
            "iris",
            "iris:1",
            "stable",
            0,
        )
        assert {name: logged[name] for name in IRIS} == sent
        assert logged["_prediction"] == str(body["predictions"][0])  # classifier outputs are logged as labels
        np.testing.assert_allclose(logged["_probabilities"], body["probabilities"][0], rtol=1e-12)
        assert 0 < logged["_latency_ms"] < 10_000
        assert before <= logged["_served_at"] <= after


def test_log_files_are_plain_parquet_partitioned_by_endpoint_and_date(served: tuple[str, Workspace]) -> None:
    url, workspace = served
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(10):
            assert client.post("/v1/endpoints/iris/predict", json={"instances": iris_rows(i, 1)}).status_code == 200
        reg = client.post("/v1/endpoints/reg/predict", json={"instances": [{"f0": 0.1, "f1": 0.2, "f2": 0.3}]})
        assert reg.status_code == 200
    wait_for_rows(workspace.prediction_log, "iris", 10)
    wait_for_rows(workspace.prediction_log, "reg", 1)
    root = Path(workspace.settings.artifact_uri) / "prediction-log"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))
    assert files and all(PART.match(f) for f in files), files
    today = datetime.now(UTC).date().isoformat()
    assert {PART.match(f)["endpoint"] for f in files} == {"iris", "reg"}  # type: ignore[index]
    assert {PART.match(f)["date"] for f in files} == {today}  # type: ignore[index]
    for f in files:
        assert pq.read_table(root / f).num_rows > 0
    counts = raw_sql(
        f"SELECT endpoint, date::VARCHAR AS day, count(*) AS n, count(DISTINCT _request_id) AS requests "
        f"FROM read_parquet('{root}/*/*/*.parquet', hive_partitioning = true, union_by_name = true) "
        f"GROUP BY ALL ORDER BY endpoint"
    )
    assert counts == [("iris", today, 10, 10), ("reg", today, 1, 1)]
    reg_row = workspace.prediction_log.query("reg").to_pylist()[0]
    assert reg_row["_prediction"] == pytest.approx(reg.json()["predictions"][0], rel=1e-12)  # a number, not text
    assert reg_row.get("_probabilities") is None


def test_multi_row_requests_log_one_row_per_input_row_in_rows_and_columns_shapes(
    served: tuple[str, Workspace],
) -> None:
    url, workspace = served
    frame, _ = churn_frame()
    as_rows = frame.iloc[:6].to_dict(orient="records")
    as_columns = frame.iloc[6:10].to_dict(orient="list")
    with httpx.Client(base_url=url, timeout=10) as client:
        first = client.post("/v1/endpoints/churn/predict", json={"instances": as_rows}).json()
        second = client.post("/v1/endpoints/churn/predict", json={"inputs": as_columns}).json()
    logged = wait_for_rows(workspace.prediction_log, "churn", 10)
    assert len(logged) == 10
    for body, sent in ((first, frame.iloc[:6]), (second, frame.iloc[6:10])):
        mine = sorted((r for r in logged if r["_request_id"] == body["request_id"]), key=lambda r: r["_row"])
        assert [r["_row"] for r in mine] == list(range(len(sent)))
        features = ["tenure_months", "monthly_charges", "plan", "region"]
        assert [{f: r[f] for f in features} for r in mine] == sent[features].to_dict(orient="records")
        assert [r["_prediction"] for r in mine] == [str(p) for p in body["predictions"]]
        np.testing.assert_allclose([r["_probabilities"] for r in mine], body["probabilities"], rtol=1e-12)


def test_half_sample_rate_logs_about_half_the_requests_and_the_window_counts_them_all(
    fast: Settings,
) -> None:
    settings = fast.model_copy(update={"log_sample_rate": 0.5})
    workspace = open_workspace(settings)
    try:
        with running_server(settings, workspace) as url:
            with httpx.Client(base_url=url, timeout=10) as client:
                for i in range(400):
                    response = client.post("/v1/endpoints/iris/predict", json={"instances": iris_rows(i, 2)})
                    assert response.status_code == 200
            figures = report(url, "iris")["versions"][0]["operational"]
        assert (figures["requests"], figures["rows"]) == (400, 800)
        logged = workspace.prediction_log.query("iris", columns=["_request_id", "_row"]).to_pylist()
        requests = {r["_request_id"] for r in logged}
        assert 150 <= len(requests) <= 250  # Binomial(400, 0.5): mean 200, sd 10; a 5 sd band
        assert len(logged) == 2 * len(requests)  # a sampled request is logged whole
    finally:
        workspace.close()


def test_zero_sample_rate_logs_nothing_while_the_live_window_counts_every_request(settings: Settings) -> None:
    settings = settings.model_copy(update={"log_sample_rate": 0.0, "poll_interval_s": 0.2, "log_flush_s": 0.05})
    workspace = open_workspace(settings)
    try:
        with running_server(settings, workspace) as url:
            with httpx.Client(base_url=url, timeout=10) as client:
                for i in range(50):
                    assert client.post("/v1/endpoints/iris/predict", json={"instances": iris_rows(i, 3)}).is_success
            figures = report(url, "iris")["versions"][0]["operational"]
        assert (figures["requests"], figures["rows"]) == (50, 150)
        assert workspace.prediction_log.files("iris") == []
        assert workspace.prediction_log.count("iris") == 0
    finally:
        workspace.close()


def test_a_clean_shutdown_writes_every_prediction_still_in_memory(fast: Settings) -> None:
    settings = fast.model_copy(update={"log_flush_s": 300.0, "log_buffer_rows": 10_000})  # nothing flushes on its own
    workspace = open_workspace(settings)
    try:
        with running_server(settings, workspace) as url, httpx.Client(base_url=url, timeout=10) as client:
            sent = []
            for i in range(300):
                response = client.post("/v1/endpoints/iris/predict", json={"instances": iris_rows(i, 1)})
                sent.append(response.json()["request_id"])
        ids = workspace.prediction_log.query("iris", columns=["_request_id"]).column("_request_id").to_pylist()
        assert sorted(ids) == sorted(sent)
    finally:
        workspace.close()


# -- a real ``shipyard serve`` process, killed with SIGKILL ------------------------------------


class ServeProcess:
    """A ``shipyard serve`` subprocess in its own process group, on a free port."""

    def __init__(self, home: Path, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [*SHIPYARD, "serve", "--port", str(self.port)],
            env={**os.environ, "SHIPYARD_HOME": str(home), "SHIPYARD_POLL_INTERVAL_S": "0.3", **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_hard(self) -> None:
        """SIGKILL to the server and anything it started: no shutdown code runs."""
        os.killpg(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


@contextlib.contextmanager
def shipyard_serve(home: Path, env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    """``shipyard serve`` on ``home`` until the block ends (or the test kills it); ready when yielded."""
    server = ServeProcess(home, env or {}, home / "serve.log")
    try:
        try:
            wait_ready(server.url)
        except TimeoutError:
            raise AssertionError((home / "serve.log").read_text(errors="replace")[-3000:]) from None
        yield server
    finally:
        server.stop()


def test_a_hard_kill_loses_at_most_the_buffer_and_leaves_no_broken_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    open_workspace(Settings(home=home)).close()
    buffer_rows, sent = 200, []
    env = {"SHIPYARD_LOG_BUFFER_ROWS": str(buffer_rows), "SHIPYARD_LOG_FLUSH_S": "0.2"}
    with shipyard_serve(home, env) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(1000):
            response = client.post("/v1/endpoints/iris/predict", json={"instances": iris_rows(i, 1)})
            assert response.status_code == 200
            sent.append(response.json()["request_id"])
        server.kill_hard()  # right after the last answer
    log = PredictionLog(str(home / "artifacts"))
    files = log.files("iris")
    for path in files:  # every file a reader can see is whole
        assert pq.read_table(path).column_names[:2] == ["_request_id", "_row"]
    ids = log.query("iris", columns=["_request_id"]).column("_request_id").to_pylist()
    assert len(ids) == len(set(ids)) and set(ids) <= set(sent)
    assert len(ids) >= len(sent) - buffer_rows, f"{len(sent) - len(ids)} predictions lost, over the buffer"
    raw = raw_sql(f"SELECT count(*) FROM read_parquet('{home}/artifacts/prediction-log/*/*/part-*.parquet')")
    assert raw == [(len(ids),)]
