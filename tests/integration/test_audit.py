"""The audit trail on SQLite and PostgreSQL: every change is one hash-chained event, and tampering shows.

Changes go through the real services (and a real server for who/where/which request); the tampering is done
by SQL on the store, as someone with database access would, and ``verify`` (and ``shipyard audit verify``)
must name the first event that no longer holds.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import httpx
import pytest
import sqlalchemy as sa

from shipyard.config import Settings
from shipyard.errors import ConflictError
from shipyard.rollouts.evidence import ArmEvidence
from shipyard.serving.controller import CONTROLLER_ACTOR, Controller
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def _cli(args: list[str], settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(settings.home),
        "SHIPYARD_DATABASE_URL": settings.database_url,
        "SHIPYARD_ARTIFACT_URI": settings.artifact_uri,
        "COLUMNS": "200",
    }
    return subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=180)


def _changes(ws: Workspace) -> None:
    """Several real changes through the services: registry, aliases, approval, endpoints, keys."""
    x, _, model = iris()
    ws.registry.register(model, name="iris", sample_input=x[:20])
    ws.registry.register(model, name="iris", sample_input=x[:20])
    ws.registry.set_alias("iris:1", "champion")
    ws.registry.approve("iris:2", reason="holdout AUC 0.97")
    ws.endpoints.create("iris", model="iris@champion")
    ws.keys.create("ci", role="operator")
    ws.registry.set_alias("iris:2", "champion")


def _sql(ws: Workspace, *statements: str) -> None:
    with ws.db.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def test_every_change_is_one_chained_event_and_the_target_filter_finds_a_models_and_endpoints_events(
    workspace: Workspace,
) -> None:
    _changes(workspace)
    workspace.endpoints.set_model("iris", model="iris:1")
    workspace.registry.remove_alias("iris", "champion")
    workspace.endpoints.delete("iris")
    workspace.registry.archive("iris:1")
    events = workspace.audit.list()
    assert [(e.action, e.target) for e in events] == [
        ("model.register", "model:iris:1"),
        ("model.register", "model:iris:2"),
        ("model.alias.set", "model:iris@champion"),
        ("model.approve", "model:iris:2"),
        ("endpoint.create", "endpoint:iris"),
        ("key.create", "key:ci"),
        ("model.alias.set", "model:iris@champion"),
        ("endpoint.set", "endpoint:iris"),
        ("model.alias.delete", "model:iris@champion"),
        ("endpoint.delete", "endpoint:iris"),
        ("model.archive", "model:iris:1"),
    ]
    moved = events[6]
    assert moved.before == {"version": 1} and moved.after == {"version": 2}
    assert events[3].after == {"status": "approved", "reason": "holdout AUC 0.97"}
    assert events[7].before is not None and events[7].before["model"] == "iris@champion"
    assert all(e.actor == "local" for e in events)
    check = workspace.audit.verify()
    assert check.intact and check.checked == len(events)
    assert "key:ci" not in {e.target for e in workspace.audit.list(target="iris")}
    assert len(workspace.audit.list(target="iris")) == len(events) - 1
    assert [e.action for e in workspace.audit.list(target="iris:2")] == ["model.register", "model.approve"]
    assert [e.action for e in workspace.audit.list(target="endpoint:iris")] == [
        "endpoint.create",
        "endpoint.set",
        "endpoint.delete",
    ]
    assert [e.id for e in workspace.audit.list(limit=2)] == [events[-2].id, events[-1].id]


def test_a_change_that_fails_records_nothing(workspace: Workspace) -> None:
    _changes(workspace)
    before = len(workspace.audit.list())
    with pytest.raises(ConflictError):
        workspace.endpoints.create("iris", model="iris:1")  # already exists: 409
    with pytest.raises(ConflictError):
        workspace.registry.archive("iris:2")  # the alias points at it
    assert len(workspace.audit.list()) == before
    assert workspace.audit.verify().intact


def test_rollout_moves_are_recorded_with_who_made_them(workspace: Workspace) -> None:
    _changes(workspace)
    workspace.endpoints.create("pinned", model="iris:1")
    workspace.rollouts.start("pinned", to="iris:2", strategy="canary", steps="50,100", interval_s=3600)
    workspace.rollouts.pause("pinned")
    workspace.rollouts.resume("pinned")
    workspace.rollouts.abort("pinned", reason="support complaints")
    rollout = [e for e in workspace.audit.list(target="endpoint:pinned") if e.action.startswith("rollout.")]
    assert [e.action for e in rollout] == [
        "rollout.started",
        "rollout.paused",
        "rollout.resumed",
        "rollout.aborted",
        "rollout.rolled_back",
    ]
    assert rollout[-2].after is not None and "support complaints" in rollout[-2].after["message"]
    assert rollout[-2].before == {"status": "running", "weight": 0.5}
    assert workspace.audit.verify().intact


def test_an_automatic_rollback_is_recorded_as_the_controller(workspace: Workspace) -> None:
    _changes(workspace)
    workspace.endpoints.create("pinned", model="iris:1")
    started = workspace.rollouts.start(
        "pinned", to="iris:2", strategy="canary", steps="50,100", interval_s=3600, gates={"min_requests": 1}
    )
    healthy = ArmEvidence.empty().record(1.0).record(1.0)
    failing = healthy.record(1.0, error=True).record(1.0, error=True).record(1.0, error=True)
    workspace.rollouts.record_evidence(
        "worker-1",
        [
            SimpleNamespace(rollout_id=started.id, step=started.step_index, arm="stable", evidence=healthy),
            SimpleNamespace(rollout_id=started.id, step=started.step_index, arm="candidate", evidence=failing),
        ],
    )
    assert Controller(workspace.rollouts, "test-controller").tick_once() == 1
    last = workspace.audit.list(target="endpoint:pinned")[-1]
    assert (last.actor, last.action) == (CONTROLLER_ACTOR.principal.label, "rollout.rolled_back")
    assert last.actor == "system:controller"
    assert workspace.audit.verify().intact


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder"])
def test_verify_names_the_first_broken_link_when_a_row_is_edited_deleted_or_reordered(
    workspace: Workspace, settings: Settings, tamper: str
) -> None:
    _changes(workspace)
    ids = [e.id for e in workspace.audit.list()]
    assert ids == list(range(1, 8))
    intact = _cli(["audit", "verify"], settings)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.strip() == "7 events, chain intact"

    if tamper == "edit":  # someone rewrites who approved
        _sql(workspace, "UPDATE audit_events SET actor = 'someone-else' WHERE id = 4")
        broken, held, why = 4, 3, "was changed after it was written"
    elif tamper == "delete":  # someone removes the approval
        _sql(workspace, "DELETE FROM audit_events WHERE id = 4")
        broken, held, why = 5, 3, "does not link to event 3"
    else:  # someone swaps two events
        _sql(
            workspace,
            "UPDATE audit_events SET id = 100 WHERE id = 3",
            "UPDATE audit_events SET id = 3 WHERE id = 4",
            "UPDATE audit_events SET id = 4 WHERE id = 100",
        )
        broken, held, why = 3, 2, "does not link to event 2"

    check = workspace.audit.verify()
    assert not check.intact
    assert check.broken_at == broken and why in check.reason
    assert check.checked == held
    result = _cli(["audit", "verify"], settings)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"audit trail broken at event {broken}" in lines[0] and why in lines[0]


def test_cli_lists_the_trail_by_target_and_since(workspace: Workspace, settings: Settings) -> None:
    _changes(workspace)
    listed = _cli(["audit", "list", "--target", "iris", "--since", "1h", "--json"], settings)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["action"] for r in rows] == [
        "model.register",
        "model.register",
        "model.alias.set",
        "model.approve",
        "endpoint.create",
        "model.alias.set",
    ]
    assert set(rows[0]) >= {"id", "at", "actor", "address", "action", "target", "before", "after", "request_id"}
    table = _cli(["audit", "list", "--limit", "2"], settings)
    assert table.returncode == 0 and "key:ci" in table.stdout and "model:iris@champion" in table.stdout
    bad = _cli(["audit", "list", "--since", "yesterday"], settings)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "since" in bad.stderr


def test_changes_over_http_record_the_key_the_address_and_the_request_id(
    workspace: Workspace, settings: Settings
) -> None:
    _changes(workspace)
    _, admin = workspace.keys.create("root", role="admin")
    _, operator = workspace.keys.create("deployer", role="operator")
    _, predictor = workspace.keys.create("app", role="predictor")
    with running_server(settings.model_copy(update={"poll_interval_s": 0.2}), workspace) as url:
        as_operator = {"authorization": f"Bearer {operator}", "x-request-id": "change-42"}
        moved = httpx.put(f"{url}/v1/endpoints/iris", json={"model": "iris:1"}, headers=as_operator, timeout=30)
        assert moved.status_code == 200, moved.text
        refused = httpx.post(f"{url}/v1/endpoints", json={"name": "iris", "model": "iris:1"}, headers=as_operator)
        assert refused.status_code == 409
        feedback = httpx.post(
            f"{url}/v1/endpoints/iris/feedback",
            json={"items": [{"request_id": "r1", "label": 0}, {"request_id": "r2", "label": 1}]},
            headers={"authorization": f"Bearer {predictor}"},
            timeout=30,
        )
        assert feedback.status_code == 200, feedback.text
        single = httpx.post(
            f"{url}/v1/endpoints/iris/feedback",
            json={"request_id": "r3", "label": 0},
            headers={"authorization": f"Bearer {predictor}"},
            timeout=30,
        )
        assert single.status_code == 200  # one label is data, not a change: no event

        as_admin = {"authorization": f"Bearer {admin}"}
        listed = httpx.get(f"{url}/v1/audit", params={"target": "endpoint:iris"}, headers=as_admin, timeout=30)
        assert listed.status_code == 200, listed.text
        assert httpx.get(f"{url}/v1/audit", headers={"authorization": f"Bearer {operator}"}).status_code == 403
        assert httpx.get(f"{url}/v1/audit/verify", headers=as_admin).json() == {
            "intact": True,
            "checked": 13,  # the 12 changes, and the server's first start recording its settings
            "broken_at": None,
            "reason": "",
        }
        assert httpx.get(f"{url}/v1/audit", params={"since": "soon"}, headers=as_admin).status_code == 422
        assert httpx.get(f"{url}/v1/audit", params={"limit": 0}, headers=as_admin).status_code == 422
    events = listed.json()
    assert [e["action"] for e in events] == ["endpoint.create", "endpoint.set", "feedback.import"]
    change = events[1]
    assert change["actor"] == "key:deployer"
    assert change["address"] == "127.0.0.1"
    assert change["request_id"] == "change-42"
    assert change["before"]["model"] == "iris@champion" and change["after"]["version"] == "iris:1"
    assert events[2]["actor"] == "key:app" and events[2]["after"]["items"] == 2
    assert not any(operator in str(e) or admin in str(e) for e in events)  # never a secret in the trail


def test_the_local_cli_names_the_os_user(workspace: Workspace, settings: Settings) -> None:
    _changes(workspace)
    result = _cli(["models", "approve", "iris:1", "--reason", "shadow run clean"], settings)
    assert result.returncode == 0, result.stderr
    event = workspace.audit.list(target="iris:1")[-1]
    assert (event.action, event.actor) == ("model.approve", getpass.getuser())
    assert event.after == {"status": "approved", "reason": "shadow run clean"}


def test_a_server_records_changed_settings_once_and_never_a_secret(settings: Settings, workspace: Workspace) -> None:
    from pydantic import SecretStr

    secret = "shy_0123456789abcdef_" + "S" * 43
    first = settings.model_copy(update={"api_key": SecretStr(secret), "rate_limit_rps": 0.0})
    with running_server(first, workspace, ready=False):
        pass
    with running_server(first, workspace, ready=False):  # the same settings again: nothing new to record
        pass
    changed = first.model_copy(update={"rate_limit_rps": 50.0, "rate_limit_burst": 100})
    with running_server(changed, workspace, ready=False):
        pass
    events = [e for e in workspace.audit.list() if e.action == "settings.change"]
    assert len(events) == 2 and all(e.actor == "system:server" and e.target == "settings" for e in events)
    assert events[0].before is None and events[0].after is not None and events[0].after["rate_limit_rps"] == 0.0
    assert events[1].before == events[0].after
    assert events[1].after is not None and events[1].after["rate_limit_rps"] == 50.0
    assert secret not in json.dumps([e.to_dict() for e in events]) and "api_key" not in (events[1].after or {})
    assert workspace.audit.verify().intact
