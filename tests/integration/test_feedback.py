"""Feedback on a real server: stored durably, joined to logged predictions, scored exactly like scikit-learn.

Each test runs on SQLite and on PostgreSQL (the ``settings`` fixture); predictions and feedback go over
HTTP to a uvicorn on 127.0.0.1, and the durability test kills a real ``shipyard serve`` with SIGKILL.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.config import Settings
from shipyard.store.tables import feedback as feedback_table
from shipyard.workspace import Workspace
from tests.integration.test_cli import run
from tests.integration.test_prediction_log import iris_rows, shipyard_serve
from tests.models import iris, regression
from tests.serving_support import running_server

CANCER = tuple(f"f{i}" for i in range(30))


@cache
def cancer() -> tuple[np.ndarray, np.ndarray, Pipeline]:
    x, y = load_breast_cancer(return_X_y=True)
    return x, y, make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(x, y)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"poll_interval_s": 0.2, "log_flush_s": 0.05, "monitor_flush_s": 0.1, "max_request_bytes": 256_000}
    )


def register_all(workspace: Workspace) -> None:
    """iris (classes 0, 1, 2), cancer (binary 0/1) and a regressor, each behind an endpoint of its name."""
    x, y, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20], training_data=x, training_target=y)
    x, y, pipeline = cancer()
    workspace.registry.register(pipeline, name="cancer", sample_input=x[:50], training_data=x, training_target=y)
    x, y, reg = regression()
    workspace.registry.register(reg, name="reg", sample_input=x[:20], training_data=x, training_target=y)
    for name in ("iris", "cancer", "reg"):
        workspace.endpoints.create(name, model=f"{name}:1")


@pytest.fixture
def served(fast: Settings, workspace: Workspace) -> Iterator[tuple[httpx.Client, Workspace]]:
    register_all(workspace)
    with running(fast, workspace) as client:
        yield client, workspace


@contextmanager
def running(settings: Settings, workspace: Workspace) -> Iterator[httpx.Client]:
    """A server over ``workspace`` and an HTTP client for it, until the block ends (a clean shutdown)."""
    with running_server(settings, workspace) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def predict(client: httpx.Client, endpoint: str, rows: list[dict[str, Any]], **headers: str) -> dict[str, Any]:
    response = client.post(f"/v1/endpoints/{endpoint}/predict", json={"instances": rows}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def send_feedback(client: httpx.Client, endpoint: str, body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return client.post(
            f"/v1/endpoints/{endpoint}/feedback", content=body, headers={"content-type": "application/json"}
        )
    return client.post(f"/v1/endpoints/{endpoint}/feedback", json=body)


def performance(client: httpx.Client, endpoint: str, window: str = "1h") -> dict[str, Any] | None:
    response = client.get(f"/v1/endpoints/{endpoint}/monitoring", params={"window": window})
    assert response.status_code == 200, response.text
    versions = response.json()["versions"]
    return versions[0]["performance"] if versions else None


def stored_rows(workspace: Workspace) -> int:
    with workspace.db.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(feedback_table)).scalar_one()


def named(row: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    return dict(zip(names, map(float, row), strict=True))


def test_single_and_batch_feedback_with_rows_rewards_and_timestamps(served: tuple[httpx.Client, Workspace]) -> None:
    client, workspace = served
    x, y, _ = iris()
    first = predict(client, "iris", [named(x[i], ("f0", "f1", "f2", "f3")) for i in (0, 60, 120)])
    second = predict(client, "iris", iris_rows(5, 1))
    rid, other = first["request_id"], second["request_id"]
    two_hours_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    single = send_feedback(client, "iris", {"request_id": rid, "label": int(y[0])})
    assert single.status_code == 200 and single.json() == {"endpoint": "iris", "accepted": 1, "corrected": 0}
    batch = {
        "items": [
            {"request_id": rid, "row": 1, "label": float(y[60]), "reward": 1, "timestamp": two_hours_ago.isoformat()},
            {"request_id": rid, "row": 2, "label": int(y[120]), "timestamp": two_hours_ago.timestamp()},
            {"request_id": other, "reward": 0.5},
        ]
    }
    answer = send_feedback(client, "iris", batch)
    assert answer.status_code == 200 and answer.json() == {"endpoint": "iris", "accepted": 3, "corrected": 0}
    items = {(i.request_id, i.row): i for i in workspace.feedback.items("iris")}
    assert set(items) == {(rid, 0), (rid, 1), (rid, 2), (other, 0)}
    assert [items[(rid, k)].label for k in range(3)] == [0, 1, 2]  # 1.0 for an int class is stored as 1
    assert [items[(rid, k)].reward for k in range(3)] == [None, 1.0, None]
    assert (items[(other, 0)].label, items[(other, 0)].reward) == (None, 0.5)
    assert items[(rid, 1)].observed_at == items[(rid, 2)].observed_at == two_hours_ago
    assert abs(items[(rid, 0)].observed_at - datetime.now(UTC)) < timedelta(minutes=1)
    # Known although the feedback came right after the predictions, before the recorder's next flush.
    assert {(i.version, i.arm) for i in items.values()} == {("iris:1", "stable")}
    # The report counts feedback by when it was observed: the two-hour-old labels are outside the last hour.
    recent = performance(client, "iris", "1h")
    assert recent is not None and recent["labelled"] == 1 and recent["accuracy"] == 1.0
    assert recent["reward"]["n"] == 1 and recent["reward"]["mean"] == 0.5
    wider = performance(client, "iris", "3h")
    assert wider is not None and wider["labelled"] == 3
    assert wider["reward"]["n"] == 2 and wider["reward"]["mean"] == 0.75


def test_figures_from_feedback_on_1000_predictions_equal_scikit_learn_and_resending_changes_nothing(
    served: tuple[httpx.Client, Workspace],
) -> None:
    client, workspace = served
    x, y, _ = cancer()
    rng = np.random.default_rng(11)
    picked = rng.integers(0, len(x), 1000)
    noisy = x[picked] + rng.normal(0, 0.6, (1000, 30)) * x.std(axis=0)  # so the model makes mistakes
    truth = y[picked]
    items, predicted, positive = [], [], []
    for start in range(0, 1000, 10):  # 100 requests of 10 rows; feedback addresses each row
        body = predict(client, "cancer", [named(r, CANCER) for r in noisy[start : start + 10]])
        predicted += body["predictions"]
        positive += [p[1] for p in body["probabilities"]]
        items += [{"request_id": body["request_id"], "row": k, "label": int(truth[start + k])} for k in range(10)]
    assert 0.8 < accuracy_score(truth, predicted) < 0.99
    assert send_feedback(client, "cancer", {"items": items}).json() == {
        "endpoint": "cancer",
        "accepted": 1000,
        "corrected": 0,
    }
    figures = performance(client, "cancer")
    assert figures is not None and figures["labelled"] == 1000
    assert figures["accuracy"] == accuracy_score(truth, predicted)
    assert figures["f1"] == pytest.approx(f1_score(truth, predicted), abs=1e-12)
    assert figures["precision"] == pytest.approx(precision_score(truth, predicted), abs=1e-12)
    assert figures["recall"] == pytest.approx(recall_score(truth, predicted), abs=1e-12)
    assert figures["roc_auc"] == pytest.approx(roc_auc_score(truth, positive), abs=1e-12)
    assert stored_rows(workspace) == 1000
    # The same feedback again (a client retrying after a timeout): nothing added, nothing changed.
    assert send_feedback(client, "cancer", {"items": items}).status_code == 200
    assert send_feedback(client, "cancer", items[0]).status_code == 200
    assert stored_rows(workspace) == 1000
    again = performance(client, "cancer")
    assert again is not None
    assert {k: again[k] for k in ("labelled", "accuracy", "f1", "roc_auc", "confusion_matrix")} == {
        k: figures[k] for k in ("labelled", "accuracy", "f1", "roc_auc", "confusion_matrix")
    }


def test_multiclass_and_regression_figures_equal_scikit_learn(served: tuple[httpx.Client, Workspace]) -> None:
    client, _ = served
    x, y, _ = iris()
    body = predict(client, "iris", [named(r, ("f0", "f1", "f2", "f3")) for r in x])
    items = [{"request_id": body["request_id"], "row": k, "label": int(label)} for k, label in enumerate(y)]
    assert send_feedback(client, "iris", {"items": items}).status_code == 200
    figures = performance(client, "iris")
    assert figures is not None and figures["labelled"] == 150
    assert figures["accuracy"] == accuracy_score(y, body["predictions"])
    assert figures["f1"] == pytest.approx(f1_score(y, body["predictions"], average="macro"), abs=1e-12)
    xr, yr, _ = regression()
    answer = predict(client, "reg", [named(r, ("f0", "f1", "f2")) for r in xr[:60]])
    items = [{"request_id": answer["request_id"], "row": k, "label": float(v)} for k, v in enumerate(yr[:60])]
    assert send_feedback(client, "reg", {"items": items}).status_code == 200
    errors = performance(client, "reg")
    assert errors is not None and errors["labelled"] == 60
    assert errors["mae"] == pytest.approx(mean_absolute_error(yr[:60], answer["predictions"]), abs=1e-12)
    rmse = math.sqrt(np.mean((np.asarray(answer["predictions"]) - yr[:60]) ** 2))
    assert errors["rmse"] == pytest.approx(rmse, abs=1e-12)


def test_feedback_sent_before_its_prediction_is_kept_and_joined_once_the_prediction_is_served(
    served: tuple[httpx.Client, Workspace],
) -> None:
    client, workspace = served
    x, y, _ = cancer()
    early = send_feedback(client, "cancer", {"request_id": "order-42", "label": int(y[3])})
    assert early.status_code == 200
    assert [(i.request_id, i.label, i.version) for i in workspace.feedback.items("cancer")] == [
        ("order-42", int(y[3]), None)
    ]
    assert performance(client, "cancer") is None  # no prediction to score yet
    body = predict(client, "cancer", [named(x[3], CANCER)], **{"X-Request-ID": "order-42"})
    assert body["request_id"] == "order-42"
    figures = performance(client, "cancer")
    assert figures is not None and figures["labelled"] == 1
    assert figures["accuracy"] == float(body["predictions"][0] == int(y[3]))
    joined = workspace.feedback.joined("cancer").to_pylist()
    assert len(joined) == 1 and joined[0]["_prediction"] == str(body["predictions"][0])
    assert joined[0]["_version"] == "cancer:1" and joined[0]["f3"] == float(x[3, 3])


def test_export_writes_every_feedback_item_with_empty_prediction_columns_where_nothing_was_logged(
    served: tuple[httpx.Client, Workspace], tmp_path: Path
) -> None:
    client, workspace = served
    rows = iris_rows(40, 3)
    body = predict(client, "iris", rows)
    items = [
        {"request_id": body["request_id"], "row": 2, "label": 1},
        {"request_id": body["request_id"], "row": 0, "reward": 0.25},
        {"request_id": "never-served-7", "label": 0},
    ]
    assert send_feedback(client, "iris", {"items": items}).status_code == 200
    assert performance(client, "iris") is not None  # the report has brought the log up to date
    settings = workspace.settings
    out = tmp_path / "export" / "iris-feedback.parquet"
    env = {"SHIPYARD_DATABASE_URL": settings.database_url, "SHIPYARD_ARTIFACT_URI": settings.artifact_uri}
    done = run(["feedback", "export", "iris", "-o", str(out)], settings.home, extra_env=env)
    assert "3 feedback row" in done.stdout
    exported = {(r["_request_id"], r["_row"]): r for r in pq.read_table(out).to_pylist()}
    assert set(exported) == {(body["request_id"], 2), (body["request_id"], 0), ("never-served-7", 0)}
    labelled = exported[(body["request_id"], 2)]
    assert {f: labelled[f] for f in ("f0", "f1", "f2", "f3")} == rows[2]
    assert (labelled["_label"], labelled["_prediction"], labelled["_version"]) == (
        1,
        str(body["predictions"][2]),
        "iris:1",
    )
    assert exported[(body["request_id"], 0)]["_reward"] == 0.25
    assert exported[(body["request_id"], 0)]["f0"] == rows[0]["f0"]
    unknown = exported[("never-served-7", 0)]
    assert unknown["_label"] == 0 and unknown["_corrections"] == 0
    assert all(unknown[c] is None for c in ("f0", "f1", "f2", "f3", "_prediction", "_probabilities", "_version"))
    # The query the README gives: the prediction log joined with an export by the shared _request_id and _row.
    log_files = f"{settings.artifact_uri}/prediction-log/endpoint=iris/*/*.parquet"
    logged = duckdb.sql(
        f"""
        SELECT p.*, f._label, f._reward, f._observed_at, f._corrections
        FROM read_parquet('{log_files}', union_by_name = true) AS p
        JOIN read_parquet('{out}') AS f USING (_request_id, _row)
        """
    ).to_arrow_table()
    by_row = {r["_row"]: r for r in logged.to_pylist()}
    assert set(by_row) == {0, 2} and {r["_request_id"] for r in by_row.values()} == {body["request_id"]}
    assert (by_row[2]["_label"], by_row[2]["_prediction"], by_row[2]["f1"]) == (
        1,
        str(body["predictions"][2]),
        rows[2]["f1"],
    )
    assert (by_row[0]["_reward"], by_row[0]["_label"], by_row[0]["_version"]) == (0.25, None, "iris:1")


def test_a_timestamp_with_an_offset_is_stored_filtered_and_exported_as_the_same_instant(
    served: tuple[httpx.Client, Workspace], tmp_path: Path
) -> None:
    """``10:00+02:00`` is 08:00Z on SQLite as on PostgreSQL, whether it came through the service or HTTP."""
    client, workspace = served
    sent = "2026-11-21T10:00:00+02:00"
    workspace.feedback.record("iris", {"request_id": "by-service", "label": 1, "timestamp": sent})
    assert send_feedback(client, "iris", {"request_id": "by-http", "label": 2, "timestamp": sent}).status_code == 200
    instant = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    out = tmp_path / "offset.parquet"
    assert workspace.feedback.export("iris", out) == 2
    exported = {r["_request_id"]: r["_observed_at"] for r in pq.read_table(out).to_pylist()}
    assert exported == {"by-service": instant, "by-http": instant}
    assert {i.observed_at for i in workspace.feedback.items("iris")} == {instant}

    def ids(**bounds: datetime) -> set[str]:
        return {i.request_id for i in workspace.feedback.items("iris", **bounds)}

    both, tick = {"by-service", "by-http"}, timedelta(microseconds=1)
    assert ids(since=instant) == both and ids(since=instant + tick) == set()
    assert ids(until=instant) == set() and ids(until=instant + tick) == both
    # A bound given in another offset is the same instant too: 09:30+01:30 is 08:00Z.
    assert ids(since=datetime(2026, 11, 21, 9, 30, tzinfo=timezone(timedelta(hours=1, minutes=30)))) == both


def test_export_at_sample_rate_zero_keeps_every_item_with_empty_prediction_columns(
    fast: Settings, workspace: Workspace, tmp_path: Path
) -> None:
    register_all(workspace)
    settings = fast.model_copy(update={"log_sample_rate": 0.0})
    with running(settings, workspace) as client:
        ids = [predict(client, "iris", iris_rows(i, 1))["request_id"] for i in range(5)]
        items = [{"request_id": rid, "label": i % 3} for i, rid in enumerate(ids)]
        assert send_feedback(client, "iris", {"items": items}).status_code == 200
        assert performance(client, "iris") is None  # labels, but no logged prediction to score them against
    out = tmp_path / "zero.parquet"
    assert workspace.feedback.export("iris", out) == 5
    exported = pq.read_table(out)
    labels = dict(zip(exported.column("_request_id").to_pylist(), exported.column("_label").to_pylist(), strict=True))
    assert labels == {rid: i % 3 for i, rid in enumerate(ids)}
    assert set(exported.column("_served_version").to_pylist()) == {"iris:1"}  # known from the serving worker
    for column in ("f0", "_prediction", "_version"):
        assert exported.column(column).to_pylist() == [None] * 5


OK_ITEM = {"request_id": "req-1", "label": 0}


DEEP = b"[" * 1000 + b"]" * 1000
BAD_FEEDBACK: list[tuple[str, Any, int, tuple[str, ...]]] = [
    ("nope", OK_ITEM, 404, ("nope",)),
    ("iris", b"{oops", 400, ("not valid JSON",)),
    ("iris", b"", 400, ("not valid JSON",)),
    ("iris", b'{"request_id": "req-1", "reward": NaN}', 400, ("not valid JSON",)),
    ("iris", {}, 422, ("request_id",)),
    ("iris", [OK_ITEM], 422, ("JSON object",)),
    ("iris", {"label": 0}, 422, ("request_id",)),
    ("iris", {"request_id": 17, "label": 0}, 422, ("request_id", "17")),
    ("iris", {"request_id": "has spaces", "label": 0}, 422, ("request_id",)),
    ("iris", {"request_id": "req-1"}, 422, ("label, a reward or both",)),
    ("iris", {"request_id": "req-1", "label": None, "reward": None}, 422, ("label, a reward or both",)),
    ("iris", {**OK_ITEM, "colour": "red"}, 422, ("unknown field", "colour")),
    ("iris", {**OK_ITEM, "row": -1}, 422, ("row", "-1")),
    ("iris", {**OK_ITEM, "row": "0"}, 422, ("row",)),
    ("iris", {**OK_ITEM, "row": True}, 422, ("row",)),
    ("iris", {**OK_ITEM, "row": 10_000}, 422, ("row", "10000")),
    ("iris", {"request_id": "req-1", "label": "setosa"}, 422, ("feedback: label 'setosa'", "[0, 1, 2]")),
    ("iris", {"request_id": "req-1", "label": "0"}, 422, ("label '0'",)),
    ("iris", {"request_id": "req-1", "label": 7}, 422, ("label 7", "classes")),
    ("iris", {"request_id": "req-1", "label": True}, 422, ("label True",)),
    ("iris", {"request_id": "req-1", "label": 0.5}, 422, ("label 0.5",)),
    ("iris", {"request_id": "req-1", "reward": "yes"}, 422, ("reward", "finite number")),
    ("iris", {"request_id": "req-1", "reward": False}, 422, ("reward",)),
    ("iris", {**OK_ITEM, "timestamp": "yesterday"}, 422, ("timestamp", "ISO 8601")),
    ("iris", {**OK_ITEM, "timestamp": True}, 422, ("timestamp",)),
    ("iris", {"items": []}, 422, ("items",)),
    ("iris", {"items": OK_ITEM}, 422, ("items",)),
    ("iris", {"items": [OK_ITEM], "request_id": "req-1"}, 422, ("only 'items'",)),
    ("iris", {"items": [OK_ITEM, "label 1"]}, 422, ("item 1",)),
    (
        "iris",
        {"items": [OK_ITEM, {"request_id": "req-2", "label": 1}, {"request_id": "req-3", "label": "virginica"}]},
        422,
        ("item 2", "label 'virginica'"),
    ),
    ("iris", {"items": [OK_ITEM, {**OK_ITEM, "label": 1}]}, 422, ("items 0 and 1", "req-1")),
    ("reg", {"request_id": "req-1", "label": "high"}, 422, ("label", "finite number")),
    ("reg", {"request_id": "req-1", "label": True}, 422, ("label must be a finite number, got True",)),
    ("reg", {"request_id": "req-1", "label": [1.5]}, 422, ("label",)),
    ("iris", {"items": [{"request_id": f"r{i}", "label": 0} for i in range(10_000)]}, 413, ("over the limit",)),
    # A value nested a thousand lists deep in any field is named briefly, never a RecursionError (a 500).
    *(
        ("iris", b'{"request_id": "req-1", ' + extra + b'"' + field.encode() + b'": ' + DEEP + b"}", 422, (field,))
        for field, extra in [
            ("request_id", b""),
            ("row", b'"label": 1, '),
            ("label", b""),
            ("reward", b""),
            ("timestamp", b'"label": 1, '),
            ("correction", b'"label": 1, '),
        ]
    ),
]


def test_bad_feedback_gets_a_clear_4xx_naming_the_item_and_field_and_stores_nothing(
    served: tuple[httpx.Client, Workspace],
) -> None:
    client, workspace = served
    assert send_feedback(client, "iris", {"request_id": "kept", "label": 2}).status_code == 200
    assert send_feedback(client, "reg", {"request_id": "kept", "label": 1.5}).status_code == 200
    problems = []
    for endpoint, body, status, fragments in BAD_FEEDBACK:
        response = send_feedback(client, endpoint, body)
        shown = body if isinstance(body, bytes) or len(str(body)) < 200 else f"{str(body)[:200]}…"
        if response.status_code != status:
            problems.append(f"{endpoint} {shown!r}: {response.status_code} {response.text[:300]}, expected {status}")
            continue
        error = response.json()["error"]
        assert set(error) == {"code", "message", "request_id"}
        missing = [f for f in fragments if f not in error["message"]]
        if missing:
            problems.append(f"{endpoint} {shown!r}: message {error['message']!r} lacks {missing}")
    assert not problems, "\n".join(problems)
    assert stored_rows(workspace) == 2  # no refused body stored anything, not even its good items


def acknowledged_feedback(url: str, rounds: int) -> list[tuple[str, int, int]]:
    """Predictions, then feedback on them in several POSTs; returns (request id, row, label) of every 200."""
    acknowledged = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(rounds):
            body = predict(client, "iris", iris_rows(i * 5, 5))
            items = [{"request_id": body["request_id"], "row": k, "label": (i + k) % 3} for k in range(5)]
            response = send_feedback(client, "iris", {"items": items})
            assert response.status_code == 200
            acknowledged += [(body["request_id"], k, (i + k) % 3) for k in range(5)]
    return acknowledged


def test_acknowledged_feedback_survives_a_hard_kill_of_the_server(store_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=store_url)
    setup = Workspace(settings)
    x, _, model = iris()
    setup.registry.register(model, name="iris", sample_input=x[:20])
    setup.endpoints.create("iris", model="iris:1")
    setup.close()
    with shipyard_serve(home, {"SHIPYARD_DATABASE_URL": store_url}) as server:
        acknowledged = acknowledged_feedback(server.url, rounds=40)
        server.kill_hard()  # right after the last 200
    reopened = Workspace(settings)
    try:
        items = reopened.feedback.items("iris")
        assert sorted((i.request_id, i.row, i.label) for i in items) == sorted(acknowledged)
        assert {i.version for i in items} == {"iris:1"}
    finally:
        reopened.close()
