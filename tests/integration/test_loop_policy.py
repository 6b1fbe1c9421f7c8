"""The loop policy on a real server: a retraining job's success leads, per endpoint, to nothing more (``manual``),
to validation and a wait for approval (``validate``), or to validation and a canary that completes (``auto``).

v1 is a depth-1 tree on iris (about 67% accurate); the "better" trainer fits a logistic regression on the
job's feedback rows (about 95% on the holdout), the "worse" one fits it on shuffled labels (about a third).
The gap is 30 points either way, so the paired gate (at most 1 point worse, on the bootstrap bound) decides
the same on every run. The trainer runs in the job's child process; the server is a uvicorn on 127.0.0.1;
the holdout is a real Parquet file. Nothing of ours is mocked.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from shipyard.core.jobs import Job, Trainer
from shipyard.core.loop import LoopMode, LoopPolicy
from shipyard.core.versions import VersionStatus
from shipyard.rollouts.machine import RolloutStatus
from shipyard.store import outbox
from shipyard.workspace import Workspace
from tests.integration.test_cli import run
from tests.integration.test_prediction_log import iris_rows
from tests.integration.test_retrain import fast, send_traffic, wait_finished
from tests.serving_support import ServerUrl, running_server

TRAINER = """
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


def better(data_path, parent):
    data = pd.read_parquet(data_path)
    return LogisticRegression(max_iter=500).fit(data[list(parent.features)], data[parent.target_column])


def worse(data_path, parent):
    data = pd.read_parquet(data_path)
    labels = np.random.default_rng(0).permutation(data[parent.target_column].to_numpy())
    return LogisticRegression(max_iter=500).fit(data[list(parent.features)], labels)
"""

CANARY = {"steps": "50,100", "interval_s": "1s", "gates": {"min_requests": 5}}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "train.py").write_text(textwrap.dedent(TRAINER))
    return directory


@pytest.fixture
def holdout(tmp_path: Path) -> Path:
    x, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(x, columns=["f0", "f1", "f2", "f3"]).assign(label=y)
    path = tmp_path / "holdout.parquet"
    frame.to_parquet(path)
    return path


def serve_weak_v1(workspace: Workspace, project: Path, trainer: str) -> None:
    x, y = load_iris(return_X_y=True)
    weak = DecisionTreeClassifier(max_depth=1, random_state=0).fit(x, y)
    workspace.registry.register(weak, name="iris", sample_input=x[:20], training_data=x, training_target=y)
    workspace.endpoints.create("iris", model="iris:1")
    workspace.jobs.set_trainer("iris", Trainer.parse(callable_target=trainer, command=None, project_dir=str(project)))


def policy(mode: LoopMode, holdout: Path) -> LoopPolicy:
    if mode is LoopMode.MANUAL:
        return LoopPolicy(mode)
    return LoopPolicy(mode, holdout=str(holdout), target="label", canary=CANARY)


def loop_steps(job: Job) -> list[dict[str, Any]]:
    return list((job.result or {}).get("loop") or [])


def events(workspace: Workspace, prefix: str = "loop.") -> list[outbox.OutboxEvent]:
    with workspace.db.read() as conn:
        return [e for e in outbox.after(conn, 0, limit=1000) if e.event.startswith(prefix)]


def audit_actions(workspace: Workspace) -> list[str]:
    return [e.action for e in workspace.audit.list(limit=1000) if e.action.startswith("loop.")]


def retrain_until_done(workspace: Workspace) -> Job:
    job = workspace.jobs.retrain("iris", since="all")
    finished = wait_finished(workspace, job.id)
    assert finished.state.value == "succeeded", finished.error
    deadline = time.monotonic() + 60  # the loop runs right after the job, in the worker's thread
    while not loop_steps(workspace.jobs.get(job.id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return workspace.jobs.get(job.id)


def keep_predicting(url: ServerUrl, until: Any, timeout_s: float = 90) -> None:
    """Traffic for the canary's gates (5 requests an arm) until ``until()`` holds."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=10) as client:
        i = 0
        while not until():
            assert time.monotonic() < deadline, "the canary did not finish in time"
            answer = client.post(
                "/v1/endpoints/iris/predict",
                json={"instances": iris_rows(i % 150, 1)},
                headers={"X-Routing-Key": f"user-{i}"},
            )
            assert answer.status_code == 200, answer.text
            i += 1
            time.sleep(0.02)


def test_auto_loop_rolls_a_better_retrained_version_out_by_a_canary_that_completes(
    sqlite_workspace: Workspace, project: Path, holdout: Path
) -> None:
    workspace = sqlite_workspace
    serve_weak_v1(workspace, project, "train:better")
    workspace.loop.set_policy("iris", policy(LoopMode.AUTO, holdout), actor=_me())
    with running_server(fast(workspace.settings), workspace) as url:
        send_traffic(url, workspace)
        job = retrain_until_done(workspace)
        kinds = [s["kind"] for s in loop_steps(job)]
        assert kinds == ["registered", "validated", "canary_started"], loop_steps(job)
        keep_predicting(url, lambda: workspace.rollouts.current("iris").status is not RolloutStatus.RUNNING)
        rollout = workspace.rollouts.current("iris")
        assert rollout.status is RolloutStatus.COMPLETED, rollout.to_dict()
        assert rollout.candidate == "iris:2"
        deadline = time.monotonic() + 20  # the server picks the endpoint's new version up within a poll
        while time.monotonic() < deadline:
            answer = httpx.post(f"{url}/v1/endpoints/iris/predict", json={"instances": iris_rows(0, 1)}, timeout=10)
            if answer.json()["version"] == 2:
                break
            time.sleep(0.1)
        assert answer.json()["version"] == 2
    # The evidence: a stored, passing validation run against the stable v1, audited as the controller.
    validation = workspace.validation.latest(workspace.registry.get("iris:2"))
    assert validation is not None and validation.passed and validation.champion == "iris:1"
    assert [e.event for e in events(workspace)] == ["loop.validated", "loop.canary_started"]
    started = events(workspace)[1].payload
    assert started["job"] == job.id and started["cause"] == {"kind": "manual"}
    assert started["evidence"]["rollout"] == rollout.id
    assert audit_actions(workspace) == ["loop.registered", "loop.validated", "loop.canary_started"]
    assert {e.actor for e in workspace.audit.list(limit=1000) if e.action.startswith("loop.")} == {"system:controller"}
    shown = cli(workspace, "jobs", "show", job.id)
    assert "loop      canary_started: canary" in shown.stdout
    status = cli(workspace, "rollout", "status", "iris")
    assert f"opened by the loop policy after job {job.id} (kind=manual)" in status.stdout
    assert "validated: iris:2 passed its gates against iris:1" in status.stdout


def test_auto_loop_rolls_nothing_out_when_the_retrained_version_is_worse_and_says_why(
    sqlite_workspace: Workspace, project: Path, holdout: Path
) -> None:
    workspace = sqlite_workspace
    serve_weak_v1(workspace, project, "train:worse")
    workspace.loop.set_policy("iris", policy(LoopMode.AUTO, holdout), actor=_me())
    with running_server(fast(workspace.settings), workspace) as url:
        send_traffic(url, workspace)
        job = retrain_until_done(workspace)
    assert [s["kind"] for s in loop_steps(job)] == ["registered", "validation_failed"]
    failed = events(workspace)
    assert [e.event for e in failed] == ["loop.validation_failed"]
    payload = failed[0].payload
    assert payload["version"] == "iris:2"
    assert "failed its gates against iris:1" in payload["message"]
    assert "regression" in payload["message"]  # names the gate that failed
    assert any(not g["passed"] for g in payload["evidence"]["gates"])
    assert events(workspace, prefix="") == failed  # no rollout event at all
    assert workspace.endpoints.resolve(workspace.endpoints.get("iris")).version.ref == "iris:1"


def test_manual_loop_stops_after_registering(sqlite_workspace: Workspace, project: Path, holdout: Path) -> None:
    workspace = sqlite_workspace
    serve_weak_v1(workspace, project, "train:better")
    workspace.loop.set_policy("iris", policy(LoopMode.MANUAL, holdout), actor=_me())
    with running_server(fast(workspace.settings), workspace) as url:
        send_traffic(url, workspace)
        job = retrain_until_done(workspace)
    assert [s["kind"] for s in loop_steps(job)] == ["registered", "stopped"]
    assert workspace.validation.latest(workspace.registry.get("iris:2")) is None
    assert [e.event for e in events(workspace)] == ["loop.stopped"]
    assert [e.event for e in events(workspace, prefix="rollout")] == []


def test_validate_loop_waits_for_approval_then_starts_the_canary(
    sqlite_workspace: Workspace, project: Path, holdout: Path
) -> None:
    workspace = sqlite_workspace
    serve_weak_v1(workspace, project, "train:better")
    workspace.loop.set_policy("iris", policy(LoopMode.VALIDATE, holdout), actor=_me())
    with running_server(fast(workspace.settings), workspace) as url:
        send_traffic(url, workspace)
        job = retrain_until_done(workspace)
        assert [s["kind"] for s in loop_steps(job)] == ["registered", "validated", "awaiting_approval"]
        _, pending = workspace.loop.policy("iris")
        assert pending == {"job": job.id, "version": "iris:2"}
        time.sleep(1.0)  # several ticks of the lease holder: still waiting, nothing rolled out
        assert workspace.registry.get("iris:2").status is VersionStatus.REGISTERED
        assert [e.event for e in events(workspace, prefix="rollout")] == []
        assert workspace.loop.policy("iris")[1] == pending  # the worker looked, and still waits
        workspace.registry.approve("iris:2", reason="looked at the validation run")
        deadline = time.monotonic() + 20
        while not any(e.event == "loop.canary_started" for e in events(workspace)) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert [e.event for e in events(workspace)] == ["loop.validated", "loop.awaiting_approval", "loop.canary_started"]
    assert workspace.rollouts.current("iris").candidate == "iris:2"
    assert workspace.loop.policy("iris")[1] is None
    assert [s["kind"] for s in loop_steps(workspace.jobs.get(job.id))][-1] == "canary_started"


def test_loop_set_refuses_bad_policies_in_one_line(sqlite_workspace: Workspace, holdout: Path) -> None:
    x, y = load_iris(return_X_y=True)
    sqlite_workspace.registry.register(
        DecisionTreeClassifier(max_depth=1).fit(x, y), name="iris", sample_input=x[:20], training_data=x
    )
    sqlite_workspace.endpoints.create("iris", model="iris:1")
    cases = {
        ("--policy", "sometimes"): "unknown loop policy 'sometimes'",
        ("--policy", "auto"): "give --holdout PATH",
        ("--policy", "auto", "--holdout", "nope.parquet", "--target", "label"): "no such file",
        ("--policy", "auto", "--holdout", str(holdout), "--target", "label", "--min", "accuracy"): "accuracy",
        ("--policy", "auto", "--holdout", str(holdout), "--target", "label", "--steps", "50,20"): "steps",
    }
    for args, message in cases.items():
        result = cli(sqlite_workspace, "loop", "set", "iris", *args, ok=False)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    ok = cli(
        sqlite_workspace, "loop", "set", "iris", "--policy", "validate", "--holdout", str(holdout), "--target", "label"
    )
    assert "validate: validate on" in ok.stdout
    shown = cli(sqlite_workspace, "loop", "show", "iris", "--json")
    assert '"mode": "validate"' in shown.stdout
    missing = cli(sqlite_workspace, "loop", "set", "nowhere", "--policy", "manual", ok=False)
    assert missing.returncode == 1 and "no endpoint 'nowhere'" in missing.stderr


def _me() -> Any:
    from shipyard.core.identity import LOCAL_ACTOR

    return LOCAL_ACTOR


def cli(workspace: Workspace, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``shipyard ...`` in a subprocess on the test's store."""
    extra = {
        "SHIPYARD_DATABASE_URL": workspace.settings.database_url,
        "SHIPYARD_ARTIFACT_URI": workspace.settings.artifact_uri,
    }
    return run(list(args), workspace.settings.home, ok=ok, extra_env=extra)
