"""Monitoring series in ``/metrics``: a real server, traffic with one shifted feature and labels over REST,
scraped and parsed with ``prometheus_client.parser``; and ``shipyard serve --workers 2``, whose two workers
answer the same monitoring series.

The model is a logistic regression on iris. Feature f2 is shifted by +4 (its training sd is 1.8, so about
2.2 sd: every drift test flags it at n=120); the other features are sent as trained, so none of them drifts
except by a false alarm, which the fixed rows make deterministic. Accuracy in ``/metrics`` is compared with
the accuracy of the answers the server gave to the labels sent, to 1e-9 (the same rows, no sampling).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.config import Settings
from shipyard.workspace import Workspace
from tests.integration.test_retrain import fast
from tests.integration.test_serving_cli import server_process
from tests.serving_support import free_port, running_server, wait_ready

FEATURES = ["f0", "f1", "f2", "f3"]
ROWS = 120
SHIFT = 4.0


def register_iris(workspace: Workspace) -> None:
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    workspace.registry.register(model, name="iris", sample_input=x[:20], training_data=x, training_target=y)
    workspace.endpoints.create("iris", model="iris:1")


def send_shifted(url: str) -> float:
    """ROWS predictions with f2 shifted, every one labelled; returns the accuracy of the server's answers."""
    x, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(3)
    picks = rng.choice(len(y), ROWS, replace=True)
    correct, items = [], []
    with httpx.Client(base_url=url, timeout=10) as client:
        for index in picks:
            row = dict(zip(FEATURES, map(float, x[index]), strict=True))
            row["f2"] += SHIFT
            answer = client.post("/v1/endpoints/iris/predict", json={"instances": [row]})
            deadline = time.monotonic() + 60
            while answer.status_code == 503 and time.monotonic() < deadline:  # a second worker still loading
                time.sleep(0.1)
                answer = client.post("/v1/endpoints/iris/predict", json={"instances": [row]})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            correct.append(body["predictions"][0] == int(y[index]))
            items.append({"request_id": body["request_id"], "label": int(y[index])})
        stored = client.post("/v1/endpoints/iris/feedback", json={"items": items})
        assert stored.status_code == 200, stored.text
    return float(np.mean(correct))


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape (on a fresh connection, so any worker may answer), keyed by name and labels."""
    with httpx.Client(timeout=10) as client:
        text = client.get(f"{url}/metrics").text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def monitoring(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[Any, float]:
    return {k: v for k, v in samples.items() if k[0].startswith("shipyard_monitoring_") and "refresh" not in k[0]}


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    wanted = {"endpoint": "iris", "version": "iris:1", **labels}
    for (sample, keys), number in samples.items():
        if sample == name and dict(keys) == wanted:
            return number
    return None


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout_s}s")


def test_metrics_carry_drift_quality_and_accuracy_series_per_endpoint_and_version(
    sqlite_workspace: Workspace,
) -> None:
    register_iris(sqlite_workspace)
    settings = fast(sqlite_workspace.settings)  # polls every 0.2 s: series refreshed every 3 s
    with running_server(settings, sqlite_workspace) as url:
        accuracy = send_shifted(url)
        labelled = lambda: value(monitoring(scrape(url)), "shipyard_monitoring_labelled_rows") == ROWS  # noqa: E731
        wait_for(labelled)
        samples = monitoring(scrape(url))
    assert value(samples, "shipyard_monitoring_feature_drifted", feature="f2") == 1.0
    assert value(samples, "shipyard_monitoring_drift_detected") == 1.0
    assert value(samples, "shipyard_monitoring_prediction_drifted") in (0.0, 1.0)
    share = value(samples, "shipyard_monitoring_drifted_features_share")
    assert share is not None and 0.25 <= share <= 1.0
    score = [v for (n, k), v in samples.items() if n == "shipyard_monitoring_drift_score" and ("feature", "f2") in k]
    assert len(score) == 1  # one series per feature, its test named in a label
    assert value(samples, "shipyard_monitoring_missing_rate", feature="f2") == 0.0
    out_of_range = value(samples, "shipyard_monitoring_out_of_range", feature="f2")
    assert out_of_range is not None and out_of_range > 0  # f2 reached 6.9 in training; shifted rows go to 10.9
    assert value(samples, "shipyard_monitoring_out_of_range", feature="f0") == 0.0
    assert value(samples, "shipyard_monitoring_rows") == ROWS
    realised = value(samples, "shipyard_monitoring_performance", metric="accuracy")
    assert realised is not None and abs(realised - accuracy) < 1e-9
    estimated = value(samples, "shipyard_monitoring_estimated_performance", metric="accuracy", method="cbpe")
    assert estimated is not None and 0.0 <= estimated <= 1.0
    # A figure that cannot be computed is absent, never NaN: no regression error for a classifier.
    assert value(samples, "shipyard_monitoring_performance", metric="mae") is None
    assert all(v == v for v in samples.values())
    assert samples[("shipyard_monitoring_series_dropped", (("endpoint", "iris"),))] == 0.0


def test_two_workers_answer_the_same_monitoring_series(tmp_path: Path) -> None:
    home = tmp_path / "home"
    workspace = Workspace(Settings(home=home))
    try:
        register_iris(workspace)
    finally:
        workspace.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"SHIPYARD_MONITOR_FLUSH_S": "0.2", "SHIPYARD_LOG_FLUSH_S": "0.1"}
    with server_process(["serve", "--port", str(port), "--workers", "2"], home, env) as server:
        wait_ready(url)
        send_shifted(url)
        answers: dict[str, dict[Any, float]] = {}  # worker pid -> its monitoring series, once complete

        def both_workers_answered_the_same() -> bool:
            samples = scrape(url)
            pids = [dict(k)["pid"] for n, k in samples if n == "shipyard_monitoring_refresh_seconds"]
            series = monitoring(samples)
            if len(pids) == 1 and value(series, "shipyard_monitoring_labelled_rows") == ROWS:
                answers[pids[0]] = series
            values = list(answers.values())
            return len(values) >= 2 and all(v == values[0] for v in values)

        wait_for(both_workers_answered_the_same, timeout_s=90)
        assert server.poll() is None
    assert len(answers) == 2 and all(p != str(os.getpid()) for p in answers)
    first = next(iter(answers.values()))
    assert value(first, "shipyard_monitoring_feature_drifted", feature="f2") == 1.0
