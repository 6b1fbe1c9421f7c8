"""Outlier scores on every served row, through a real server on 127.0.0.1.

A model registered with training data gets an outlier model; ordinary rows and then far-out rows are sent over
REST, and the outliers are counted in the window, shown over HTTP, by ``shipyard monitor`` and in the HTML
report, and logged with each prediction. ``?explain_outliers=true`` answers each row's score and the features
behind it. A version registered without training data says scoring is unavailable, and why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

from shipyard.config import Settings
from shipyard.services.outliers import UNAVAILABLE_NO_DATA
from shipyard.store.prediction_log import PARQUET_OPTIONS
from shipyard.workspace import Workspace
from tests.serving_support import running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]
FEATURES = [f"f{i}" for i in range(5)]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 5)), columns=FEATURES)
    frame["f1"] = 0.9 * frame["f0"] + 0.3 * frame["f1"]
    return frame


def _fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"poll_interval_s": 0.2, "log_flush_s": 0.2, "monitor_flush_s": 0.3})


def _predict(client: httpx.Client, url: str, endpoint: str, frame: pd.DataFrame, query: str = "") -> dict[str, Any]:
    body = {"instances": frame.to_dict(orient="records")}
    response = client.post(f"{url}/v1/endpoints/{endpoint}/predict{query}", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _outliers(url: str, endpoint: str, rows: int) -> dict[str, Any]:
    """The version's outlier section once its window holds the ``rows`` sent (the recorder runs in the
    background, so the last request reaches a window a moment after its answer); after 30 s, what is there."""
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(f"{url}/v1/endpoints/{endpoint}/monitoring", params={"window": "1h"}, timeout=60)
        assert response.status_code == 200, response.text
        versions = response.json()["versions"]
        if (versions and versions[0]["operational"]["rows"] >= rows) or time.monotonic() > deadline:
            (version,) = versions
            return dict(version["outliers"])
        time.sleep(0.2)


def _cli(args: list[str], home: Path, **extra: str) -> str:
    env = {**os.environ, "SHIPYARD_HOME": str(home), "COLUMNS": "250", **extra}
    done = subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


def test_outliers_are_scored_counted_shown_and_logged_per_row(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    train = _frame(3000, seed=1)
    target = (train["f0"] + train["f2"] > 0).astype(int).to_numpy()
    model = LogisticRegression().fit(train, target)
    version = workspace.registry.register(
        model, name="risk", sample_input=train[:20], training_data=train, training_target=target
    )
    assert version.outlier_model is not None and version.outlier_model.method == "mahalanobis"
    workspace.endpoints.create("risk", model=version.ref)
    normal = _frame(400, seed=2)
    far = _frame(10, seed=3)
    far["f3"] = 12.0  # twelve training sds out: every one of these rows is an outlier

    with running_server(_fast(settings), workspace) as url, httpx.Client(timeout=60) as client:
        for start in range(0, len(normal), 100):
            _predict(client, url, "risk", normal[start : start + 100])
        answer = _predict(client, url, "risk", far, query="?explain_outliers=true")
        plain = _predict(client, url, "risk", far)
        refused = client.post(f"{url}/v1/endpoints/risk/predict?explain_outliers=maybe", json={"instances": []})
        section = _outliers(url, "risk", len(normal) + 2 * len(far))
        monitor = _cli(["monitor", "risk", "--url", url], tmp_path / "cli")
        _cli(["report", "risk", "-o", str(tmp_path / "risk.html"), "--url", url], tmp_path / "cli")
        card = _cli(["models", "show", "risk:1"], tmp_path / "cli", SHIPYARD_URL=url)

    explained = answer["outliers"]
    assert explained["available"] is True and explained["method"] == "mahalanobis"
    assert len(explained["rows"]) == 10
    for row in explained["rows"]:
        assert row["outlier"] is True and row["score"] > row["threshold"] == explained["threshold"]
        assert row["top_features"][0]["feature"] == "f3" and row["top_features"][0]["deviation"] > 8
    assert "outliers" not in plain  # computed only when asked
    assert refused.status_code == 400 and "explain_outliers" in refused.text

    # 420 rows scored (400 normal, 10 far explained, the same 10 again); the 10 far ones twice are above, and
    # of the 400 normal rows a few at most (0.1% expected: 0.4 rows; 3 allows for the binomial tail)
    assert section["available"] is True and section["rows_scored"] == 420
    assert 20 <= section["rows_above"] <= 23
    assert section["rate"] == section["rows_above"] / 420 and section["expected_rate"] == 0.001
    assert sum(section["score_ratio_histogram"]["counts"]) == 420
    assert f"{section['rows_above']} of 420 rows above the threshold" in monitor
    html = (tmp_path / "risk.html").read_text()
    assert "Outliers" in html and "rows above threshold" in html
    assert "outlier model mahalanobis over 5 numeric features, fitted on 3,000 training rows" in card

    logged = workspace.prediction_log.query("risk", columns=["_request_id", "_outlier_score"]).to_pandas()
    assert len(logged) == 420 and logged["_outlier_score"].notna().all()
    by_request = logged.groupby("_request_id")["_outlier_score"].min()
    assert (by_request[by_request.index == answer["request_id"]] > explained["threshold"]).all()
    scores = sorted(row["score"] for row in explained["rows"])
    assert np.allclose(sorted(logged.loc[logged["_request_id"] == answer["request_id"], "_outlier_score"]), scores)


def test_a_version_without_training_data_says_outlier_scoring_is_unavailable_and_why(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    train = _frame(500, seed=4)
    model = LogisticRegression().fit(train, (train["f0"] > 0).astype(int))
    version = workspace.registry.register(model, name="bare", sample_input=train[:20])
    assert version.outlier_model is None
    workspace.endpoints.create("bare", model=version.ref)
    with running_server(_fast(settings), workspace) as url, httpx.Client(timeout=60) as client:
        answer = _predict(client, url, "bare", train[:3], query="?explain_outliers=true")
        section = _outliers(url, "bare", 3)
        monitor = _cli(["monitor", "bare", "--url", url], tmp_path / "cli")
        _cli(["report", "bare", "-o", str(tmp_path / "bare.html"), "--url", url], tmp_path / "cli")
    assert answer["outliers"] == {"available": False, "note": UNAVAILABLE_NO_DATA}
    assert section["available"] is False and section["rate"] is None and section["note"] == UNAVAILABLE_NO_DATA
    assert section["rows_scored"] == 0
    assert f"no outlier scores: {UNAVAILABLE_NO_DATA}" in monitor
    assert "registered without training data" in (tmp_path / "bare.html").read_text()
    logged = workspace.prediction_log.query("bare").column_names
    assert "_outlier_score" not in logged


def test_isolation_forest_is_fitted_when_asked_and_scores_served_rows(settings: Settings, workspace: Workspace) -> None:
    train = _frame(2000, seed=5)
    model = LogisticRegression().fit(train, (train["f0"] > 0).astype(int))
    version = workspace.registry.register(
        model, name="forest", sample_input=train[:20], training_data=train, outlier_model="isolation_forest"
    )
    assert version.outlier_model is not None and version.outlier_model.method == "isolation_forest"
    assert workspace.registry.get("forest:1").outlier_model == version.outlier_model
    workspace.endpoints.create("forest", model=version.ref)
    far = _frame(5, seed=6) * 15
    with running_server(_fast(settings), workspace) as url, httpx.Client(timeout=60) as client:
        answer = _predict(client, url, "forest", far, query="?explain_outliers=1")
        section = _outliers(url, "forest", len(far))
    assert answer["outliers"]["method"] == "isolation_forest"
    assert all(row["outlier"] for row in answer["outliers"]["rows"])
    assert section["rows_scored"] == 5 and section["rows_above"] == 5


def test_old_prediction_log_files_without_outlier_scores_still_read(workspace: Workspace) -> None:
    """A log file written before outlier scoring and one written after union by name: the old rows read null."""
    from datetime import UTC, date, datetime

    base = {
        "_request_id": pa.array(["old"], pa.string()),
        "_row": pa.array([0], pa.int32()),
        "_endpoint": pa.array(["e"], pa.string()),
        "_version": pa.array(["m:1"], pa.string()),
        "_arm": pa.array(["stable"], pa.string()),
        "_served_at": pa.array([datetime(2026, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        "_latency_ms": pa.array([1.0]),
    }
    workspace.prediction_log.write("e", date(2026, 1, 1), pa.table(base))
    new = {**base, "_request_id": pa.array(["new"], pa.string()), "_outlier_score": pa.array([2.5])}
    path = workspace.prediction_log.write("e", date(2026, 1, 1), pa.table(new))
    assert pq.read_schema(path).field("_outlier_score").type == pa.float64() and PARQUET_OPTIONS
    rows = {r["_request_id"]: r["_outlier_score"] for r in workspace.prediction_log.query("e").to_pylist()}
    assert rows == {"old": None, "new": 2.5}


def test_cli_registers_with_the_outlier_model_asked_for_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    import json

    import skops.io

    train = _frame(600, seed=7)
    model = LogisticRegression().fit(train, (train["f0"] > 0).astype(int))
    skops.io.dump(model, tmp_path / "model.skops")
    train.to_csv(tmp_path / "train.csv", index=False)
    base = [
        "models",
        "register",
        str(tmp_path / "model.skops"),
        "--name",
        "cli",
        "--sample",
        str(tmp_path / "train.csv"),
    ]
    home = tmp_path / "home"
    card = json.loads(
        _cli(
            [*base, "--training-data", str(tmp_path / "train.csv"), "--outlier-model", "isolation_forest", "--json"],
            home,
        )
    )
    assert card["outlier_model"]["method"] == "isolation_forest" and card["outlier_model"]["training_rows"] == 600
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    done = subprocess.run([*SHIPYARD, *base, "--outlier-model", "lof"], capture_output=True, text=True, env=env)
    assert done.returncode != 0 and "outlier_model must be one of" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [*SHIPYARD, *base, "--outlier-model", "isolation_forest"], capture_output=True, text=True, env=env
    )
    assert done.returncode != 0 and "needs training_data" in done.stderr


def test_conversion_to_onnx_keeps_the_source_versions_outlier_model(workspace: Workspace) -> None:
    from shipyard.services.convert import convert_version

    train = _frame(800, seed=8)
    model = LogisticRegression().fit(train, (train["f0"] > 0).astype(int))
    source = workspace.registry.register(model, name="conv", sample_input=train[:20], training_data=train)
    converted = convert_version(workspace.registry, source.ref)
    assert converted.flavor == "onnx" and converted.outlier_model == source.outlier_model is not None
    assert workspace.registry.get(converted.ref).outlier_model == source.outlier_model
