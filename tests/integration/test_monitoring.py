"""The monitoring report of a real server: drift, data quality, service figures, performance, fairness.

Traffic goes through HTTP on 127.0.0.1; the report is read over HTTP (and by the CLI), so everything
between the request path and the figures (recorder, store, merge, statistics) is the product's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from shipyard.config import Settings
from shipyard.workspace import Workspace
from tests.serving_support import running_server

FEATURES = [f"f{i}" for i in range(20)]
SHIFTED = ("f3", "f11")


def _training(rows: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, LogisticRegression]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    weights = rng.normal(size=len(FEATURES))
    target = (frame.to_numpy() @ weights + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return frame, target, LogisticRegression(max_iter=1000).fit(frame, target)


def _live(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame(np.random.default_rng(seed).normal(size=(rows, len(FEATURES))), columns=FEATURES)
    for name in SHIFTED:
        frame[name] += shift
    return frame


def _send(url: str, endpoint: str, frame: pd.DataFrame, batch: int = 100) -> list[str]:
    ids = []
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(frame), batch):
            rows = frame.iloc[start : start + batch].to_dict(orient="records")
            response = client.post(f"{url}/v1/endpoints/{endpoint}/predict", json={"instances": rows})
            assert response.status_code == 200, response.text
            ids.append(response.json()["request_id"])
    return ids


def _report(url: str, endpoint: str, **params: str) -> dict:
    response = httpx.get(f"{url}/v1/endpoints/{endpoint}/monitoring", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _served(url: str, endpoint: str, rows: int) -> dict:
    """The one version's report once its window holds the ``rows`` sent (the recorder flushes in the background);
    after 30 s, whatever is there, so lost rows still fail the caller's count."""
    deadline = time.monotonic() + 30
    while True:
        versions = _report(url, endpoint)["versions"]
        if (versions and versions[0]["operational"]["rows"] >= rows) or time.monotonic() > deadline:
            return dict(versions[0])
        time.sleep(0.2)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"poll_interval_s": 0.2, "log_flush_s": 0.2, "monitor_flush_s": 0.3})


@pytest.fixture
def model_served(fast: Settings, workspace: Workspace) -> Iterator[tuple[str, Workspace, pd.DataFrame]]:
    frame, target, model = _training()
    workspace.registry.register(model, name="m", sample_input=frame[:50], training_data=frame, training_target=target)
    for name in ("clean", "shifted"):
        workspace.endpoints.create(name, model="m:1")
    with running_server(fast, workspace) as url:
        yield url, workspace, frame


def test_shift_in_two_features_flags_exactly_those_and_clean_traffic_flags_none(
    model_served: tuple[str, Workspace, pd.DataFrame],
) -> None:
    url, workspace, _ = model_served
    _send(url, "clean", _live(3000, seed=1))
    _send(url, "shifted", _live(3000, seed=2, shift=0.5))
    clean, shifted = _served(url, "clean", 3000), _served(url, "shifted", 3000)
    assert clean["version"] == "m:1" and clean["operational"]["rows"] == 3000
    assert clean["drift"]["drifted"] is False and clean["drift"]["drifted_features"] == []
    assert shifted["drift"]["drifted"] is True
    assert sorted(shifted["drift"]["drifted_features"]) == sorted(SHIFTED)
    # drifted features come first, each with the test that decided and the reference-vs-live histogram
    first = shifted["drift"]["features"][:2]
    assert {f["feature"] for f in first} == set(SHIFTED)
    assert all(len(f["reference"]["proportions"]) == len(f["live"]["proportions"]) > 1 for f in first)
    assert shifted["timeline"] and shifted["timeline"][-1]["drifted_features"]
    # thresholds per feature (SHIPYARD_DRIFT_THRESHOLDS): a looser one for f3 leaves only f11 flagged
    workspace.monitoring.drift_thresholds = {"shifted": {"features": {"f3": {"psi": 5.0, "wasserstein": 5.0}}}}
    relaxed = _report(url, "shifted")["versions"][0]["drift"]
    assert relaxed["drifted_features"] == ["f11"]


def test_service_figures_and_data_quality_count_what_was_sent(
    model_served: tuple[str, Workspace, pd.DataFrame],
) -> None:
    url, _, frame = model_served
    ids = _send(url, "clean", _live(500, seed=3), batch=10)
    outside = _live(7, seed=4)
    outside["f0"] = frame["f0"].max() + 10.0  # beyond anything seen in training
    _send(url, "clean", outside, batch=7)
    bad_row = {**_live(1, seed=5).iloc[0].to_dict(), "f5": "not a number"}
    refused = httpx.post(f"{url}/v1/endpoints/clean/predict", json={"instances": [bad_row]}, timeout=10)
    assert refused.status_code == 422
    malformed = httpx.post(f"{url}/v1/endpoints/clean/predict", content=b"{", timeout=10)
    assert malformed.status_code == 400
    report = _report(url, "clean", window="30m")
    version = report["versions"][0]
    ops = version["operational"]
    assert ops["requests"] == len(ids) + 2  # the 422 was routed to m:1; the 400 never reached a version
    assert ops["rows"] == 507 and ops["errors"] == {"422": 1}
    assert 0 < ops["latency_ms"]["p50"] <= ops["latency_ms"]["p95"] <= ops["latency_ms"]["p99"]
    assert report["unrouted"]["errors"] == {"400": 1}
    quality = {f["feature"]: f for f in version["quality"]["features"]}
    assert quality["f0"]["out_of_range"] == 7 and quality["f1"]["out_of_range"] == 0
    assert quality["f5"]["type_violations"] == 1 and quality["f0"]["missing_rate"] == 0.0
    assert version["quality"]["rejected_requests"] == 1


def test_performance_and_label_free_estimate_from_feedback(model_served: tuple[str, Workspace, pd.DataFrame]) -> None:
    from sklearn.metrics import accuracy_score, roc_auc_score

    url, _, _ = model_served
    _, _, model = _training()  # the same seeded model the endpoint serves
    live = _live(1000, seed=6)
    proba = model.predict_proba(live)[:, 1]
    truth = (np.random.default_rng(7).random(1000) < proba).astype(int)  # labels drawn from the model's own odds
    ids = _send(url, "clean", live, batch=1)
    items = [{"request_id": rid, "label": int(y)} for rid, y in zip(ids, truth, strict=True)]
    assert httpx.post(f"{url}/v1/endpoints/clean/feedback", json={"items": items}, timeout=60).status_code == 200
    version = _report(url, "clean")["versions"][0]
    performance = version["performance"]
    assert performance["labelled"] == 1000
    assert performance["accuracy"] == accuracy_score(truth, model.predict(live))
    assert performance["roc_auc"] == pytest.approx(roc_auc_score(truth, proba), abs=1e-12)
    estimate = version["estimated"]
    assert estimate["realised_accuracy"] == performance["accuracy"]
    assert abs(estimate["accuracy"] - performance["accuracy"]) < 0.04  # a calibrated model: CBPE is close


def test_fairness_for_a_sensitive_feature_matches_fairlearn(fast: Settings, workspace: Workspace) -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"x": rng.normal(size=2000), "group": rng.choice(["a", "b", "c"], size=2000)})
    target = ((frame["x"] + (frame["group"] == "a") * 0.8 + rng.normal(scale=0.7, size=2000)) > 0.3).astype(int)
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["group"]), remainder="passthrough"), LogisticRegression()
    ).fit(frame, target)
    workspace.registry.register(
        model, name="fair", sample_input=frame[:50], training_data=frame, sensitive_features=["group"]
    )
    workspace.endpoints.create("fair", model="fair:1")
    sample = frame.sample(600, random_state=1)
    truth = target[sample.index].to_numpy()
    live = sample.reset_index(drop=True)
    with running_server(fast, workspace) as url:
        ids = _send(url, "fair", live, batch=1)
        items = [{"request_id": rid, "label": int(y)} for rid, y in zip(ids, truth, strict=True)]
        assert httpx.post(f"{url}/v1/endpoints/fair/feedback", json={"items": items}, timeout=60).status_code == 200
        fairness = _report(url, "fair")["versions"][0]["fairness"]
    predicted = model.predict(live)
    assert fairness["feature"] == "group"
    assert fairness["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(truth, predicted, sensitive_features=live["group"]), abs=1e-12
    )
    assert fairness["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(truth, predicted, sensitive_features=live["group"]), abs=1e-12
    )


def test_bad_monitoring_queries_are_clear_4xx(model_served: tuple[str, Workspace, pd.DataFrame]) -> None:
    url, _, _ = model_served
    unknown = httpx.get(f"{url}/v1/endpoints/nope/monitoring", timeout=10)
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    bad = httpx.get(f"{url}/v1/endpoints/clean/monitoring", params={"window": "yesterday"}, timeout=10)
    assert bad.status_code == 422 and "window" in bad.json()["error"]["message"]
    quiet = _report(url, "clean", version="m:1")
    assert quiet["versions"][0]["operational"]["requests"] == 0 and quiet["versions"][0]["drift"] is None


@pytest.mark.postgres
def test_store_outage_while_flushing_keeps_windows_and_serving_goes_on(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL refuses connections for a while: predictions keep answering, the windows arrive afterwards."""
    settings = Settings(
        home=tmp_path, database_url=postgres_url, poll_interval_s=0.2, log_flush_s=0.2, monitor_flush_s=0.3
    )
    workspace = Workspace(settings)
    frame, _, model = _training(rows=1000)
    workspace.registry.register(model, name="m", sample_input=frame[:50], training_data=frame)
    workspace.endpoints.create("clean", model="m:1")
    database = sa.engine.make_url(postgres_url).database
    admin = sa.create_engine(sa.engine.make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT")

    def connections(allowed: bool) -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
            if not allowed:
                conn.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                    {"d": database},
                )

    try:
        with running_server(settings, workspace) as url:
            connections(False)
            try:
                _send(url, "clean", _live(300, seed=9), batch=10)  # every answer 200 while the store is down
                recorder = url.app.state.dataplane.recorder
                recorder.sync()
                assert recorder.windows()  # kept in memory, not lost
            finally:
                connections(True)
            report = _report(url, "clean")
            assert report["versions"][0]["operational"]["requests"] == 30
    finally:
        workspace.close()
        admin.dispose()


def test_windows_of_several_replicas_merge(tmp_path: Path) -> None:
    """Two `shipyard serve` replicas on one store: each request counted once in the merged `shipyard monitor`."""
    from tests.integration.test_serving_cli import server_process
    from tests.serving_support import free_port, wait_ready

    env = {"SHIPYARD_LOG_FLUSH_S": "0.2", "SHIPYARD_MONITOR_FLUSH_S": "0.3"}
    workspace = Workspace(Settings(home=tmp_path))
    frame, _, model = _training(rows=1000)
    workspace.registry.register(model, name="m", sample_input=frame[:50], training_data=frame)
    workspace.endpoints.create("clean", model="m:1")
    workspace.close()
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    with contextlib.ExitStack() as stack:
        for port in ports:
            stack.enter_context(server_process(["serve", "--host", "127.0.0.1", "--port", str(port)], tmp_path, env))
        for url in urls:
            wait_ready(url)
        for i, url in enumerate(urls):
            _send(url, "clean", _live(100, seed=10 + i), batch=1)
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "monitor", "clean", "--json"],
        env={**os.environ, "SHIPYARD_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["versions"][0]["operational"]["requests"] == 200
    with Workspace(Settings(home=tmp_path)).db.read() as conn:
        workers = conn.execute(sa.text("SELECT COUNT(DISTINCT worker) FROM monitor_windows")).scalar_one()
    assert workers == 2


def test_feedback_learns_its_version_and_arm_from_the_log(model_served: tuple[str, Workspace, pd.DataFrame]) -> None:
    """Feedback that reached another process than the one that served (here: the store directly) gets its arm."""
    url, workspace, _ = model_served
    ids = _send(url, "clean", _live(3, seed=11), batch=1)
    workspace.feedback.record("clean", {"items": [{"request_id": rid, "reward": 1} for rid in ids]})
    assert {i.version for i in workspace.feedback.items("clean")} == {None}
    url.app.state.dataplane.recorder.sync()
    since = workspace.feedback.items("clean")[0].observed_at - pd.Timedelta(minutes=1)
    assert workspace.feedback.fill_from_log("clean", since=since) == 3
    assert {(i.version, i.arm) for i in workspace.feedback.items("clean")} == {("m:1", "stable")}
    assert workspace.feedback.fill_from_log("clean", since=since) == 0


def test_without_a_reference_profile_unseen_categories_are_judged_by_the_signature(
    fast: Settings, workspace: Workspace
) -> None:
    """A version registered with a sample only: its signature's categories say what is unseen, not 'all'."""
    from tests.models import churn_frame, churn_pipeline

    frame, _ = churn_frame()
    workspace.registry.register(churn_pipeline(), name="churn", sample_input=frame)
    workspace.endpoints.create("churn", model="churn:1")
    rows = frame[:20].to_dict(orient="records")
    rows[0] = {**rows[0], "region": "atlantis"}
    with running_server(fast, workspace) as url:
        assert httpx.post(f"{url}/v1/endpoints/churn/predict", json={"instances": rows}, timeout=30).status_code == 200
        version = _report(url, "churn")["versions"][0]
    unseen = {f["feature"]: f["unseen"] for f in version["quality"]["features"]}
    assert unseen == {"tenure_months": 0, "monthly_charges": 0, "plan": 0, "region": 1}
