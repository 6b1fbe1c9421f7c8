"""The rollout store on SQLite and PostgreSQL: one active rollout per endpoint, history, evidence, leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shipyard.errors import ConflictError
from shipyard.store import rollouts as repo
from shipyard.workspace import Workspace

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_second_active_rollout_on_an_endpoint_is_a_conflict_naming_the_first(workspace: Workspace) -> None:
    with workspace.db.write() as conn:
        repo.create(conn, "r1", "fraud", "running", {"step": 0}, NOW)
    with pytest.raises(ConflictError, match="rollout r1 in progress"), workspace.db.write() as conn:
        repo.create(conn, "r2", "fraud", "running", {"step": 0}, NOW)
    with workspace.db.read() as conn:
        assert repo.active_id(conn, "fraud") == "r1"
        assert repo.get_state(conn, "r2") is None  # the refused start left nothing behind
    with workspace.db.write() as conn:
        repo.save(conn, "r1", status="completed", state={"step": 3}, finished=True, now=NOW)
        repo.create(conn, "r2", "fraud", "running", {"step": 0}, NOW + timedelta(seconds=1))
    with workspace.db.read() as conn:
        assert repo.active_states(conn) == {"fraud": {"step": 0}}
        assert repo.latest_id(conn, "fraud") == "r2"


def test_events_keep_their_order_and_evidence_merges_per_worker(workspace: Workspace) -> None:
    with workspace.db.write() as conn:
        repo.create(conn, "r1", "fraud", "running", {}, NOW)
        repo.add_events(
            conn,
            "r1",
            [
                {"at": NOW, "kind": "started", "message": "go", "evidence": {}},
                {"at": NOW, "kind": "held", "message": "few", "evidence": {"requests": 3}},
            ],
        )
        repo.upsert_evidence(conn, "r1", 0, "candidate", "w1", {"requests": 5}, NOW)
        repo.upsert_evidence(conn, "r1", 0, "candidate", "w1", {"requests": 9}, NOW)
        repo.upsert_evidence(conn, "r1", 0, "candidate", "w2", {"requests": 4}, NOW)
        repo.upsert_evidence(conn, "r1", 1, "candidate", "w1", {"requests": 1}, NOW)
    with workspace.db.read() as conn:
        assert [e.kind for e in repo.events(conn, "r1")] == ["started", "held"]
        rows = repo.evidence_rows(conn, "r1", 0)
    assert sorted(r[1]["requests"] for r in rows) == [4, 9]


def test_only_one_holder_has_an_unexpired_lease(workspace: Workspace) -> None:
    later = NOW + timedelta(seconds=10)
    with workspace.db.write() as conn:
        assert repo.acquire_lease(conn, "controller", "a", now=NOW, expires_at=later)
    with workspace.db.write() as conn:
        assert not repo.acquire_lease(conn, "controller", "b", now=NOW + timedelta(seconds=5), expires_at=later)
        assert repo.acquire_lease(
            conn, "controller", "a", now=NOW + timedelta(seconds=5), expires_at=later + timedelta(seconds=5)
        )
    with workspace.db.write() as conn:
        # After expiry another holder takes over: a killed controller is replaced.
        assert repo.acquire_lease(
            conn, "controller", "b", now=later + timedelta(seconds=6), expires_at=later + timedelta(seconds=20)
        )
        repo.release_lease(conn, "controller", "b")
        assert repo.acquire_lease(
            conn, "controller", "a", now=later + timedelta(seconds=7), expires_at=later + timedelta(seconds=30)
        )
