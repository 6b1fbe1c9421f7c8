"""Approvals that gate, on SQLite and PostgreSQL: who approved and why, four-eyes, require-approval endpoints.

The identities are real keys from the store (``workspace.keys.create``); the HTTP checks run a real server.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from shipyard.config import Settings
from shipyard.core.identity import Actor
from shipyard.core.versions import ApprovalRequiredError, FourEyesError
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import running_server

SHIPYARD = [sys.executable, "-m", "shipyard.cli.main"]


def _key_actor(ws: Workspace, name: str, role: str = "admin") -> tuple[Actor, str]:
    key, secret = ws.keys.create(name, role=role)
    return Actor(key.principal(), "10.0.0.7", f"req-{name}"), secret


def _register(ws: Workspace, actor: Actor | None = None, *, trusted: bool = False) -> str:
    x, _, model = iris()
    if actor is None:
        return ws.registry.register(model, name="iris", sample_input=x[:20], trusted=trusted).ref
    return ws.registry.register(model, name="iris", sample_input=x[:20], trusted=trusted, actor=actor).ref


def _cli(args: list[str], settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(settings.home),
        "SHIPYARD_DATABASE_URL": settings.database_url,
        "SHIPYARD_ARTIFACT_URI": settings.artifact_uri,
        "COLUMNS": "200",
    }
    return subprocess.run([*SHIPYARD, *args], capture_output=True, text=True, env=env, timeout=180)


def test_an_approval_records_who_when_and_why_and_the_card_shows_it(workspace: Workspace) -> None:
    ci, _ = _key_actor(workspace, "ci", "operator")
    reviewer, _ = _key_actor(workspace, "reviewer")
    ref = _register(workspace, ci, trusted=True)
    registered = workspace.registry.get(ref)
    assert registered.registered_by == "key:ci" and registered.vouched_by == "key:ci"
    assert registered.approval is None and not registered.approved

    approved = workspace.registry.approve(ref, reason="  AUC 0.97 on the holdout  ", actor=reviewer)
    assert approved.approved and approved.approval is not None
    assert (approved.approval.by, approved.approval.reason) == ("key:reviewer", "AUC 0.97 on the holdout")
    card = approved.to_dict()
    assert card["registered_by"] == "key:ci" and card["vouched_by"] == "key:ci"
    assert card["approval"]["by"] == "key:reviewer" and card["approval"]["reason"] == "AUC 0.97 on the holdout"
    # approving again changes nothing: the first approval stands, and the trail has one approval
    again = workspace.registry.approve(ref, reason="second look", actor=_key_actor(workspace, "other")[0])
    assert again.approval == approved.approval
    assert [e.action for e in workspace.audit.list(target=ref)] == ["model.register", "model.approve"]

    untrusted = workspace.registry.get(_register(workspace, ci))
    assert untrusted.vouched_by is None  # nobody vouched: it was not registered with trusted=True


def test_four_eyes_refuses_the_registering_identity_and_names_the_rule(workspace: Workspace) -> None:
    ci, _ = _key_actor(workspace, "ci")
    ref = _register(workspace, ci)
    with pytest.raises(FourEyesError, match=r"four-eyes rule: key:ci registered iris:1 and cannot approve it"):
        workspace.registry.approve(ref, reason="looks fine to me", actor=ci)
    assert not workspace.registry.get(ref).approved
    assert [e.action for e in workspace.audit.list(target=ref)] == ["model.register"]  # refused: nothing recorded
    reviewer, _ = _key_actor(workspace, "reviewer")
    assert workspace.registry.approve(ref, reason="reviewed", actor=reviewer).approved


def test_the_person_at_the_machine_and_a_store_with_four_eyes_off_may_approve_their_own(
    workspace: Workspace, settings: Settings
) -> None:
    ref = _register(workspace)  # the local principal, as the CLI on the store
    assert workspace.registry.approve(ref, reason="my own model").approved
    ci, _ = _key_actor(workspace, "ci")
    second = _register(workspace, ci)
    relaxed = Workspace(settings.model_copy(update={"four_eyes": False}))
    try:
        assert relaxed.registry.approve(second, reason="single team", actor=ci).approved
    finally:
        relaxed.close()


def test_a_require_approval_endpoint_serves_only_approved_versions(workspace: Workspace) -> None:
    first, second = _register(workspace), _register(workspace)
    with pytest.raises(ApprovalRequiredError, match=r"approval rule: endpoint 'gated' requires approved versions"):
        workspace.endpoints.create("gated", model=first, require_approval=True)
    assert workspace.endpoints.list() == []
    workspace.registry.approve(first, reason="baseline")
    created = workspace.endpoints.create("gated", model=first, require_approval=True)
    assert created.endpoint.require_approval and created.version.ref == first
    # pointing it at an unapproved version, or rolling one out, is refused with the same rule
    with pytest.raises(ApprovalRequiredError, match="iris:2 is registered"):
        workspace.endpoints.set_model("gated", model=second)
    with pytest.raises(ApprovalRequiredError, match="cannot roll out to it"):
        workspace.rollouts.start("gated", to=second, strategy="canary", steps="50,100", interval_s=60)
    assert workspace.endpoints.get("gated").model == first
    # an endpoint without the rule is not held back, and lifting the rule is itself a recorded change
    workspace.endpoints.create("open", model=second)
    workspace.endpoints.set_model("gated", model=second, require_approval=False)
    assert not workspace.endpoints.get("gated").require_approval
    assert workspace.audit.list(target="endpoint:gated")[-1].after == {
        "model": second,
        "strict": False,
        "require_approval": False,
        "require_validation": False,
        "version": second,
    }
    workspace.registry.approve(second, reason="canary clean")
    workspace.endpoints.set_model("gated", model=first, require_approval=True)
    assert workspace.rollouts.start("gated", to=second, strategy="canary", steps="50,100", interval_s=60)


def test_an_alias_followed_by_a_gated_endpoint_cannot_move_to_an_unapproved_version(workspace: Workspace) -> None:
    first, second = _register(workspace), _register(workspace)
    workspace.registry.approve(first, reason="baseline")
    workspace.registry.set_alias(first, "champion")
    workspace.registry.set_alias(first, "staging")
    workspace.endpoints.create("gated", model="iris@champion", require_approval=True)
    with pytest.raises(ApprovalRequiredError, match=r"endpoint 'gated'.*cannot follow iris@champion to it"):
        workspace.registry.set_alias(second, "champion")
    assert workspace.endpoints.resolve(workspace.endpoints.get("gated")).version.ref == first  # still serving 1
    assert workspace.registry.set_alias(second, "staging").ref == second  # no gated endpoint follows @staging
    workspace.registry.approve(second, reason="shadow run clean")
    workspace.registry.set_alias(second, "champion")
    assert workspace.endpoints.resolve(workspace.endpoints.get("gated")).version.ref == second


def test_approvals_and_the_rule_over_http(workspace: Workspace, settings: Settings) -> None:
    ci, ci_secret = _key_actor(workspace, "ci")
    _, reviewer = _key_actor(workspace, "reviewer")
    _, operator = workspace.keys.create("deployer", role="operator")
    ref = _register(workspace, ci)
    with running_server(settings.model_copy(update={"poll_interval_s": 0.2}), workspace) as url:
        gated = httpx.post(
            f"{url}/v1/endpoints",
            json={"name": "gated", "model": ref, "require_approval": True},
            headers={"authorization": f"Bearer {operator}"},
            timeout=30,
        )
        assert gated.status_code == 409
        assert gated.json()["error"]["code"] == "approval_required" and "approval rule" in gated.text
        own = httpx.post(
            f"{url}/v1/models/{ref}/approve",
            json={"reason": "mine"},
            headers={"authorization": f"Bearer {ci_secret}"},
            timeout=30,
        )
        assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes"
        by_operator = httpx.post(
            f"{url}/v1/models/{ref}/approve", json={}, headers={"authorization": f"Bearer {operator}"}, timeout=30
        )
        assert by_operator.status_code == 403  # approving is an admin's act
        approved = httpx.post(
            f"{url}/v1/models/{ref}/approve",
            json={"reason": "holdout AUC 0.97"},
            headers={"authorization": f"Bearer {reviewer}", "x-request-id": "approve-1"},
            timeout=30,
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["approval"]["by"] == "key:reviewer"
        card = httpx.get(f"{url}/v1/models/{ref}", headers={"authorization": f"Bearer {operator}"}, timeout=30)
        assert card.json()["registered_by"] == "key:ci"
        assert card.json()["approval"]["reason"] == "holdout AUC 0.97"
        created = httpx.post(
            f"{url}/v1/endpoints",
            json={"name": "gated", "model": ref, "require_approval": True},
            headers={"authorization": f"Bearer {operator}"},
            timeout=30,
        )
        assert created.status_code == 201 and created.json()["require_approval"] is True
    approval = [e for e in workspace.audit.list(target=ref) if e.action == "model.approve"]
    assert [(e.actor, e.address, e.request_id) for e in approval] == [("key:reviewer", "127.0.0.1", "approve-1")]


def test_the_cli_approves_with_a_reason_gates_endpoints_and_shows_it_on_the_card(
    workspace: Workspace, settings: Settings
) -> None:
    ref = _register(workspace, trusted=True)
    refused = _cli(["endpoints", "create", "gated", "--model", ref, "--require-approval"], settings)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "approval rule" in lines[0] and f"shipyard models approve {ref}" in lines[0]
    approved = _cli(["models", "approve", ref, "--reason", "holdout AUC 0.97"], settings)
    assert approved.returncode == 0, approved.stderr
    assert f"{ref} is approved by " in approved.stdout
    created = _cli(["endpoints", "create", "gated", "--model", ref, "--require-approval"], settings)
    assert created.returncode == 0, created.stderr
    shown = _cli(["models", "show", ref], settings)
    assert shown.returncode == 0, shown.stderr
    assert "holdout AUC 0.97" in shown.stdout and "registered by" in shown.stdout
    assert "vouched for by local" in shown.stdout  # registered through the services as the local principal
    listed = _cli(["endpoints", "show", "gated", "--json"], settings)
    assert '"require_approval": true' in listed.stdout
