"""Feedback is never overwritten silently: a resend is idempotent, a different value is refused (409) unless it
is an explicit correction, and a correction keeps the old value in the history, counted and exported.

Each test runs on SQLite and on PostgreSQL (the ``workspace`` fixture); the HTTP ones go to a real server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from shipyard.config import Settings
from shipyard.core.feedback import FeedbackConflictError
from shipyard.errors import InvalidArgumentError
from shipyard.store import feedback as repo
from shipyard.workspace import Workspace
from tests.integration.test_feedback import send_feedback, stored_rows
from tests.models import iris
from tests.serving_support import running_server

EARLIER = "2026-11-21T10:00:00+00:00"
LATER = "2026-11-22T10:00:00+00:00"


@pytest.fixture
def iris_workspace(workspace: Workspace) -> Workspace:
    x, y, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20], training_data=x, training_target=y)
    workspace.endpoints.create("iris", model="iris:1")
    return workspace


@pytest.fixture
def client(settings: Settings, iris_workspace: Workspace) -> Iterator[httpx.Client]:
    fast = settings.model_copy(update={"poll_interval_s": 0.2, "log_flush_s": 0.05, "monitor_flush_s": 0.1})
    with running_server(fast, iris_workspace) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def stored(workspace: Workspace) -> dict[tuple[str, int], repo.FeedbackItem]:
    return {(i.request_id, i.row): i for i in workspace.feedback.items("iris")}


def record(workspace: Workspace, body: Any, **options: Any) -> dict[str, Any]:
    return workspace.feedback.record("iris", body, **options)


def test_the_same_value_again_is_accepted_and_stores_one_row(iris_workspace: Workspace) -> None:
    item = {"request_id": "req-1", "label": 2, "timestamp": EARLIER}
    assert record(iris_workspace, item) == {"endpoint": "iris", "accepted": 1, "corrected": 0}
    assert record(iris_workspace, {**item, "timestamp": LATER})["corrected"] == 0
    assert record(iris_workspace, {"items": [{"request_id": "req-1", "label": 2.0}]})["corrected"] == 0
    assert stored_rows(iris_workspace) == 1
    kept = stored(iris_workspace)[("req-1", 0)]
    # A resend changes nothing, not even when the value was observed.
    assert (kept.label, kept.corrections, kept.observed_at) == (2, 0, datetime(2026, 11, 21, 10, tzinfo=UTC))
    assert iris_workspace.feedback.history("iris") == []


def test_a_different_value_without_correction_is_refused_naming_the_request_and_stored_value(
    iris_workspace: Workspace,
) -> None:
    record(iris_workspace, {"request_id": "req-1", "label": 2, "reward": 1.0})
    batch = {"items": [{"request_id": "new-1", "label": 1}, {"request_id": "req-1", "label": 0}]}
    with pytest.raises(FeedbackConflictError) as refused:
        record(iris_workspace, batch)
    message = str(refused.value)
    for fragment in ("'req-1'", "row 0", "already has label 2", "not label 0", '"correction": true', "PUT"):
        assert fragment in message, message
    with pytest.raises(FeedbackConflictError, match="already has reward 1.0, not reward 0.0"):
        record(iris_workspace, {"request_id": "req-1", "reward": 0.0})
    # All or nothing: the new item of the refused batch was not stored either.
    assert set(stored(iris_workspace)) == {("req-1", 0)}
    assert (stored(iris_workspace)[("req-1", 0)].label, stored(iris_workspace)[("req-1", 0)].corrections) == (2, 0)


def test_a_label_after_a_reward_only_item_fills_the_empty_field(iris_workspace: Workspace) -> None:
    record(iris_workspace, {"request_id": "req-1", "reward": 0.5})
    record(iris_workspace, {"request_id": "req-1", "label": 1})
    record(iris_workspace, {"request_id": "req-2", "label": 0})
    record(iris_workspace, {"request_id": "req-2", "reward": 1.0})
    rows = stored(iris_workspace)
    assert (rows[("req-1", 0)].label, rows[("req-1", 0)].reward) == (1, 0.5)
    assert (rows[("req-2", 0)].label, rows[("req-2", 0)].reward) == (0, 1.0)
    assert all(r.corrections == 0 for r in rows.values()) and iris_workspace.feedback.history("iris") == []


def test_an_explicit_correction_replaces_the_value_and_keeps_the_old_one_in_the_history(
    iris_workspace: Workspace, tmp_path: Path
) -> None:
    record(iris_workspace, {"request_id": "req-1", "label": 2, "reward": 1.0, "timestamp": EARLIER})
    answer = record(iris_workspace, {"request_id": "req-1", "label": 0, "correction": True, "timestamp": LATER})
    assert answer == {"endpoint": "iris", "accepted": 1, "corrected": 1}
    current = stored(iris_workspace)[("req-1", 0)]
    assert (current.label, current.reward, current.corrections) == (0, 1.0, 1)  # the reward was not corrected
    assert current.observed_at == datetime(2026, 11, 22, 10, tzinfo=UTC)
    (old,) = iris_workspace.feedback.history("iris", "req-1")
    assert (old.request_id, old.row, old.label, old.reward) == ("req-1", 0, 2, 1.0)
    assert old.observed_at == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert abs(old.replaced_at - datetime.now(UTC)) < timedelta(minutes=5)
    # Sending the same correction again (a retry) changes nothing more.
    assert record(iris_workspace, {"request_id": "req-1", "label": 0, "correction": True})["corrected"] == 0
    assert stored(iris_workspace)[("req-1", 0)].corrections == 1
    out = tmp_path / "corrected.parquet"
    iris_workspace.feedback.export("iris", out)
    (row,) = pq.read_table(out).to_pylist()
    assert (row["_request_id"], row["_label"], row["_corrections"]) == ("req-1", 0, 1)


def test_a_correction_flag_must_be_a_boolean(iris_workspace: Workspace) -> None:
    with pytest.raises(InvalidArgumentError, match="correction must be true or false, got 'yes'"):
        record(iris_workspace, {"request_id": "req-1", "label": 0, "correction": "yes"})


def test_a_post_that_overlaps_a_committing_one_with_another_value_is_refused(iris_workspace: Workspace) -> None:
    """The check reads the stored row in the writing transaction: a post racing another cannot slip past it."""
    db = iris_workspace.db
    now = datetime.now(UTC)
    outcome: list[BaseException | dict[str, Any]] = []

    def second_post() -> None:
        try:
            outcome.append(record(iris_workspace, {"request_id": "race-1", "label": 0}))
        except BaseException as exc:
            outcome.append(exc)

    with db.write() as conn:  # the first post, between its insert and its commit
        repo.claim(conn, [repo.FeedbackItem("iris", "race-1", now, label=2)], now)
        racer = threading.Thread(target=second_post)
        racer.start()
        if db.dialect == "postgresql":  # commit only once the second post waits on this row
            _wait_for_a_lock_waiter(db)
    racer.join(60)
    (result,) = outcome
    assert isinstance(result, FeedbackConflictError), result
    assert stored(iris_workspace)[("race-1", 0)].label == 2


def test_over_http_a_conflict_is_409_and_post_with_correction_or_put_replaces(
    client: httpx.Client, iris_workspace: Workspace, tmp_path: Path
) -> None:
    first = {"request_id": "req-1", "label": 2, "timestamp": EARLIER}
    assert send_feedback(client, "iris", first).status_code == 200
    assert send_feedback(client, "iris", first).status_code == 200
    assert stored_rows(iris_workspace) == 1
    refused = send_feedback(client, "iris", {"items": [{"request_id": "other", "label": 1}, {**first, "label": 0}]})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "feedback_conflict"
    for fragment in ("'req-1'", "already has label 2", '"correction": true', "PUT /v1/endpoints/iris/feedback"):
        assert fragment in error["message"], error["message"]
    assert set(stored(iris_workspace)) == {("req-1", 0)} and stored(iris_workspace)[("req-1", 0)].label == 2

    corrected = send_feedback(client, "iris", {"request_id": "req-1", "label": 0, "correction": True})
    assert corrected.status_code == 200 and corrected.json()["corrected"] == 1
    put = client.put("/v1/endpoints/iris/feedback", json={"items": [{"request_id": "req-1", "label": 1}]})
    assert put.status_code == 200 and put.json() == {"endpoint": "iris", "accepted": 1, "corrected": 1}
    current = stored(iris_workspace)[("req-1", 0)]
    assert (current.label, current.corrections) == (1, 2)
    assert [(h.label, h.observed_at.year) for h in iris_workspace.feedback.history("iris", "req-1")] == [
        (2, 2026),
        (0, datetime.now(UTC).year),
    ]
    out = tmp_path / "http.parquet"
    iris_workspace.feedback.export("iris", out)
    assert [(r["_label"], r["_corrections"]) for r in pq.read_table(out).to_pylist()] == [(1, 2)]
    bad = client.put("/v1/endpoints/iris/feedback", json={"request_id": "req-1", "label": 9})
    assert bad.status_code == 422 and stored(iris_workspace)[("req-1", 0)].label == 1


def _wait_for_a_lock_waiter(db: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.read() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one():
                return
        time.sleep(0.01)
    raise AssertionError("the second post never waited for the first one's row")
