"""The monitoring report's JSON, as the HTTP route and ``shipyard monitor --json`` write it, stays the same.

``monitoring_report.json`` was written by the service as it stood before the report became a typed model
(when it still built nested dicts), from the scenario below: a classifier with a sensitive feature, a
calibrator, labels and rewards, drift in later windows and an unrouted request; a second version serving as
candidate; a regressor with labels. The typed report must write the same keys in the same order, the same
types and the same values (floats to a tolerance: they come from a model fit and SciPy), and must read its
own JSON back into an equal report.

The file grows only by additions: keys a later release adds are inserted where the service writes them, and no
key written before is removed, renamed or changed (the classifier's ``average_precision``, ``brier_score``,
``per_class`` and ``precision_recall_curve`` were added so).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from shipyard.config import Settings
from shipyard.core.versions import ModelVersion
from shipyard.monitoring.report import MonitoringReport
from shipyard.monitoring.window import LiveWindow, Profiler, StoredWindow, WindowProfile
from shipyard.reporting import render_html
from shipyard.workspace import Workspace
from tests.serving_support import running_server

GOLDEN = Path(__file__).with_name("monitoring_report.json")
BASE = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
NOW = BASE + timedelta(minutes=20)
WINDOW_S = 300
GROUPS = np.array(["a", "b", "c"], dtype=object)


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x0": rng.normal(size=rows) + shift,
            "x1": rng.normal(size=rows),
            "group": rng.choice(GROUPS, size=rows, p=[0.5, 0.3, 0.2]),
        }
    )


def _target(frame: pd.DataFrame, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(scale=0.7, size=len(frame))
    return ((frame["x0"] + 0.5 * frame["x1"] + (frame["group"] == "a") * 0.6 + noise) > 0.3).astype(int).to_numpy()


def _store(
    workspace: Workspace,
    endpoint: str,
    version: ModelVersion,
    model: Any,
    live: pd.DataFrame,
    k: int,
    *,
    arm: str,
    labels: np.ndarray | None = None,
) -> None:
    """One window of traffic as the recorder keeps it: the profiled window, the logged rows, their feedback."""
    start = BASE + timedelta(seconds=k * WINDOW_S)
    n = len(live)
    window = LiveWindow(Profiler(version.signature, version.reference_profile))
    window.add_requests({"200": n, "422": 1}, np.linspace(1.0, 9.0, n + 1), {arm: n + 1}, {"x1": k % 2})
    columns = {name: live[name].to_numpy() for name in live.columns}
    predictions = np.asarray(model.predict(live))
    classifier = hasattr(model, "predict_proba")
    probabilities = np.asarray(model.predict_proba(live)) if classifier else None
    window.add_rows(columns, predictions, probabilities)
    workspace.monitoring.store_windows(
        [StoredWindow(endpoint, version.ref, start, WINDOW_S, "w1", window.snapshot().to_dict())]
    )
    ids = [f"{version.ref}-{k}-{i}" for i in range(n)]
    served_at = [start + timedelta(seconds=i) for i in range(n)]
    data: dict[str, Any] = {
        "_request_id": pa.array(ids, pa.string()),
        "_row": pa.array([0] * n, pa.int32()),
        "_endpoint": pa.array([endpoint] * n, pa.string()),
        "_version": pa.array([version.ref] * n, pa.string()),
        "_arm": pa.array([arm] * n, pa.string()),
        "_served_at": pa.array(served_at, pa.timestamp("us", tz="UTC")),
        "_latency_ms": pa.array([2.0] * n, pa.float64()),
        **{name: pa.array(live[name].tolist()) for name in live.columns},
    }
    if classifier:
        data["_prediction"] = pa.array([str(p) for p in predictions], pa.string())
        data["_probabilities"] = pa.array(np.asarray(probabilities).tolist(), pa.list_(pa.float64()))
    else:
        data["_prediction"] = pa.array(predictions.astype(np.float64), pa.float64())
    workspace.prediction_log.write(endpoint, start.date(), pa.table(data))
    if labels is None:
        return
    items = []
    for i in range(0, n, 2):  # every other prediction gets its label, every fourth a reward too
        item: dict[str, Any] = {"request_id": ids[i], "label": labels[i].item(), "timestamp": served_at[i].isoformat()}
        if classifier and i % 4 == 0:
            item["reward"] = int(labels[i] == predictions[i])
        items.append(item)
    workspace.feedback.record(endpoint, {"items": items})


def build_reports(workspace: Workspace) -> dict[str, MonitoringReport]:
    """The scenario's two reports, as the service returns them."""
    train = _frame(2000, seed=1)
    target = _target(train, seed=2)
    classifier = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["group"]), remainder="passthrough"), LogisticRegression()
    ).fit(train, target)
    stable = workspace.registry.register(
        classifier,
        name="fraud",
        sample_input=train[:50],
        training_data=train,
        training_target=target,
        sensitive_features=["group"],
    )
    candidate = workspace.registry.register(classifier, name="fraud", sample_input=train[:50], training_data=train)
    workspace.endpoints.create("fraud", model=stable.ref)
    for k in range(3):
        live = _frame(300, seed=10 + k, shift=0.4 * k)
        _store(workspace, "fraud", stable, classifier, live, k, arm="stable", labels=_target(live, seed=20 + k))
    _store(workspace, "fraud", candidate, classifier, _frame(40, seed=30), 2, arm="candidate")
    unrouted = WindowProfile(requests=2, statuses={"400": 2})
    workspace.monitoring.store_windows([StoredWindow("fraud", "", BASE, WINDOW_S, "w1", unrouted.to_dict())])

    numeric = train[["x0", "x1"]]
    regressor = LinearRegression().fit(numeric, 2.0 * numeric["x0"] - numeric["x1"])
    price = workspace.registry.register(regressor, name="price", sample_input=numeric[:50], training_data=numeric)
    workspace.endpoints.create("price", model=price.ref)
    live = _frame(200, seed=40)[["x0", "x1"]]
    truth = (2.0 * live["x0"] - live["x1"] + np.random.default_rng(41).normal(scale=0.3, size=len(live))).to_numpy()
    _store(workspace, "price", price, regressor, live, 1, arm="stable", labels=truth)

    workspace.monitoring.clock = lambda: NOW
    # The verdict rules as they stood when the golden file was written (Holm and PSI-or-Wasserstein are
    # the defaults since): this file pins the report's JSON, not the defaults.
    workspace.monitoring.drift_thresholds = {"*": {"correction": "none", "default": {"numeric_effect": "psi"}}}
    return {name: workspace.monitoring.report(name, window="1h") for name in ("fraud", "price")}


def assert_same_json(actual: Any, expected: Any, path: str = "report") -> None:
    """Same keys in the same order, same JSON types, same values; floats to a relative 1e-6."""
    assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_same_json(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: {len(actual)} items != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-9), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def test_the_typed_report_writes_the_json_the_dict_building_service_wrote(workspace: Workspace) -> None:
    reports = build_reports(workspace)
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for name, report in reports.items():
        assert isinstance(report, MonitoringReport)
        written = json.loads(json.dumps(report.to_dict()))  # through text, as the route and the CLI send it
        assert_same_json(written, golden[name], name)
        again = MonitoringReport.from_dict(written)
        assert again == MonitoringReport.from_dict(golden[name])
        assert json.dumps(again.to_dict()) == json.dumps(written)


def test_the_route_answers_it_and_the_cli_rebuilds_it_from_a_remote_server(
    settings: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    reports = build_reports(workspace)
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    with running_server(settings, workspace) as url:
        response = httpx.get(f"{url}/v1/endpoints/fraud/monitoring", params={"window": "1h"}, timeout=60)
        assert response.status_code == 200, response.text
        answered = response.json()
        printed = _cli(["monitor", "fraud", "--json", "--url", url], tmp_path).stdout
        page = tmp_path / "fraud.html"
        _cli(["report", "fraud", "-o", str(page), "--since", "1h", "--url", url], tmp_path)
    assert answered == reports["fraud"].to_dict()
    assert_same_json(answered, golden["fraud"], "fraud")
    # The CLI rebuilt the report from the server's JSON and wrote it back out unchanged, in the same order.
    assert json.dumps(json.loads(printed)) == json.dumps(answered)
    assert page.read_text(encoding="utf-8") == render_html(MonitoringReport.from_dict(answered))


def _cli(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", *args],
        env={**os.environ, "SHIPYARD_HOME": str(home / "cli")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


if (
    __name__ == "__main__"
):  # rewrite the file (only for a deliberate change): python -m tests.integration.test_report_json DIR
    home = Path(sys.argv[1])
    ws = Workspace(Settings(home=home))
    try:
        reports = build_reports(ws)
        plain = {name: r.to_dict() for name, r in reports.items()}
        GOLDEN.write_text(json.dumps(plain, indent=1) + "\n", encoding="utf-8")
    finally:
        ws.close()
