"""Retraining jobs end to end: a trainer in the user's project, traffic and feedback over REST to a real server,
``shipyard retrain`` registering the next version with its lineage, and every way a job can go wrong.

The trainer is a real module written to a temporary project directory, imported by the job's child process;
the server is a uvicorn on 127.0.0.1 (or a real ``shipyard serve``, killed with SIGKILL); the CLI runs as a
subprocess. Nothing of ours is mocked.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.core.jobs import Job, JobState, Trainer, TrainerKind
from shipyard.services.lineage import frame_hash
from shipyard.workspace import Workspace
from tests.integration.test_cli import run
from tests.integration.test_prediction_log import iris_rows, shipyard_serve
from tests.models import iris
from tests.serving_support import running_server

FEATURES = ["f0", "f1", "f2", "f3"]

TRAINER = '''
import os
import time
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).parent


def main(data_path, parent):
    """Fit on exactly the rows given; keep a copy of them so the test can check what the trainer saw."""
    data = pd.read_parquet(data_path)
    data.to_parquet(HERE / "seen.parquet")
    print(f"training on {len(data)} rows from {parent.ref} ({parent.flavor})")
    return LogisticRegression(max_iter=500).fit(data[list(parent.features)], data[parent.target_column])


def raises(data_path, parent):
    raise ValueError("column f9 is all NaN")


def hangs(data_path, parent):
    print("sleeping", flush=True)
    time.sleep(600)


def not_a_model(data_path, parent):
    return {"weights": [1, 2, 3]}


def fewer_features(data_path, parent):
    data = pd.read_parquet(data_path)
    return LogisticRegression(max_iter=500).fit(data[["f0", "f1", "f2"]], data[parent.target_column])


def waits_for_marker(data_path, parent):
    """Hangs while the marker file exists, then trains: the restart test removes it before the second server."""
    print("waiting for the marker to go", flush=True)
    while (HERE / "marker").exists():
        time.sleep(0.1)
    return main(data_path, parent)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "train.py").write_text(textwrap.dedent(TRAINER))
    return directory


def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"poll_interval_s": 0.2, "log_flush_s": 0.05, "monitor_flush_s": 0.1})


def serve_v1(workspace: Workspace, project: Path, target: str = "train:main") -> None:
    x, y, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20], training_data=x, training_target=y)
    workspace.endpoints.create("iris", model="iris:1")
    trainer = Trainer.parse(callable_target=target, command=None, project_dir=str(project))
    workspace.jobs.set_trainer("iris", trainer)


def send_traffic(url: str, workspace: Workspace, rows: int = 60) -> pd.DataFrame:
    """One row per request, every row labelled over REST; returns what was sent, as the trainer should see it."""
    y = iris()[1]
    sent: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(rows):
            index = (i * 7) % len(y)  # every class, in no particular order
            row = iris_rows(index, 1)[0]
            answer = client.post("/v1/endpoints/iris/predict", json={"instances": [row]})
            assert answer.status_code == 200, answer.text
            sent.append({"_request_id": answer.json()["request_id"], **row, "_label": int(y[index])})
        items = [{"request_id": r["_request_id"], "label": r["_label"]} for r in sent]
        stored = client.post("/v1/endpoints/iris/feedback", json={"items": items})
        assert stored.status_code == 200, stored.text
    deadline = time.monotonic() + 20  # the log is flushed every 50 ms; wait until every prediction is on disk
    while workspace.prediction_log.count("iris") < rows and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workspace.prediction_log.count("iris") == rows
    return pd.DataFrame(sent)


def wait_finished(workspace: Workspace, job_id: str, timeout_s: float = 90) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = workspace.jobs.get(job_id)
        if job.state.finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {workspace.jobs.get(job_id).state} after {timeout_s}s")


@pytest.fixture
def served(settings: Settings, workspace: Workspace, project: Path) -> Iterator[tuple[str, pd.DataFrame]]:
    serve_v1(workspace, project)
    with running_server(fast(settings), workspace) as url:
        sent = send_traffic(url, workspace)
        yield url, sent


def test_retrain_registers_the_next_version_trained_on_exactly_the_joined_rows(
    settings: Settings, workspace: Workspace, project: Path, served: tuple[str, pd.DataFrame]
) -> None:
    url, sent = served
    home = settings.home
    env = {"SHIPYARD_DATABASE_URL": settings.database_url, "SHIPYARD_ARTIFACT_URI": settings.artifact_uri}
    result = run(["retrain", "iris", "--since", "1h", "--wait"], home, extra_env=env)
    assert "registered iris:2" in result.stdout, result.stdout
    v2 = workspace.registry.get("iris:2")
    job_id = v2.tags["shipyard.job"]
    job = workspace.jobs.get(job_id)
    assert job.state is JobState.SUCCEEDED and job.version_ref == "iris:2"
    assert job.worker is not None and job.worker.startswith("server:")  # the server holding the lease ran it
    seen = pd.read_parquet(project / "seen.parquet").sort_values("_request_id").reset_index(drop=True)
    expected = sent.sort_values("_request_id").reset_index(drop=True)
    assert seen["_request_id"].tolist() == expected["_request_id"].tolist()
    pd.testing.assert_frame_equal(seen[FEATURES], expected[FEATURES])
    assert seen["_label"].tolist() == expected["_label"].tolist()
    # lineage: parent, the data's hash (the same function registration uses), the window, the cause, the job
    assert v2.parent_version == 1
    assert v2.training_data_hash == frame_hash(pd.read_parquet(project / "seen.parquet")[FEATURES])
    assert job.result is not None and job.result["training_data_hash"] == v2.training_data_hash
    assert v2.tags["shipyard.cause"] == "manual" and v2.tags["shipyard.training_rows"] == str(len(sent))
    assert v2.tags["shipyard.window_until"] and v2.tags["shipyard.window_since"]
    v1 = workspace.registry.get("iris:1")
    assert (v2.signature.names, v2.signature.output) == (v1.signature.names, v1.signature.output)  # same contract
    # the CLI shows it
    listed = run(["jobs", "list"], home, extra_env=env).stdout
    assert job_id in listed and "succeeded" in listed and "iris:2" in listed
    shown = run(["jobs", "show", job_id], home, extra_env=env).stdout
    assert "parent iris:1" in shown and "iris:2" in shown and "manual" in shown
    logs = run(["jobs", "logs", job_id], home, extra_env=env).stdout
    assert f"training on {len(sent)} rows from iris:1 (sklearn)" in logs and "registered iris:2" in logs
    # and the audit trail, run as the local user, then the job
    actions = [(e.action, e.target) for e in workspace.audit.list(limit=50)]
    assert ("job.create", f"job:{job_id}") in actions and ("model.set_trainer", "model:iris") in actions
    assert ("model.register", "model:iris:2") in actions
    # the training set was kept: once v2 serves, a job trains on it plus the (same) feedback, with v2 as parent
    workspace.endpoints.set_model("iris", model="iris:2")
    again = httpx.post(f"{url}/v1/endpoints/iris/retrain", json={"since": "1h", "include_training_data": True})
    assert again.status_code == 202, again.text
    second = wait_finished(workspace, again.json()["id"])
    assert second.state is JobState.SUCCEEDED, second.log
    assert second.result is not None and (second.result["feedback_rows"], second.result["previous_rows"]) == (60, 60)
    assert workspace.registry.get("iris:3").parent_version == 2 and second.params.parent == "iris:2"


@pytest.mark.parametrize(
    ("target", "reason", "in_log"),
    [
        ("train:raises", "trainer train:raises raised ValueError: column f9 is all NaN", "Traceback"),
        ("train:not_a_model", "is not a model Shipyard can save", "calling train:not_a_model"),
        ("train:fewer_features", "does not keep its parent's signature: features missing: 'f3'", "calling"),
        ("train:missing", "cannot import trainer train:missing", "AttributeError"),
    ],
)
def test_a_trainer_that_fails_fails_the_job_with_its_reason_and_registers_nothing(
    sqlite_workspace: Workspace, project: Path, target: str, reason: str, in_log: str
) -> None:
    workspace = sqlite_workspace
    serve_v1(workspace, project, target)
    with running_server(fast(workspace.settings), workspace) as url:
        send_traffic(url, workspace, rows=30)
        job = wait_finished(workspace, workspace.jobs.retrain("iris", since="1h").id)
    assert job.state is JobState.FAILED
    assert job.error is not None and reason in job.error, job.error
    assert in_log in job.log, job.log
    assert [v.ref for v in workspace.registry.list_versions("iris")] == ["iris:1"]


def test_a_trainer_that_hangs_is_stopped_at_its_timeout(sqlite_workspace: Workspace, project: Path) -> None:
    workspace = sqlite_workspace
    serve_v1(workspace, project, "train:hangs")
    with running_server(fast(workspace.settings), workspace) as url:
        send_traffic(url, workspace, rows=30)
        started = time.monotonic()
        # The timeout covers the whole job process (start-up, the training set, training, registering): 12 s
        # leaves the child several seconds to start on a loaded machine before the trainer's 600 s sleep.
        job = wait_finished(workspace, workspace.jobs.retrain("iris", since="1h", timeout_s=12).id)
        elapsed = time.monotonic() - started
    assert job.state is JobState.FAILED and job.error is not None and "timed out after 12s" in job.error
    assert "sleeping" in job.log  # the trainer did start, and was stopped mid-sleep
    assert elapsed < 60  # stopped near the timeout, not after the 600 s sleep
    assert [v.ref for v in workspace.registry.list_versions("iris")] == ["iris:1"]


def test_jobs_of_one_model_run_one_at_a_time_and_a_queued_one_can_be_cancelled(
    sqlite_workspace: Workspace, project: Path
) -> None:
    workspace = sqlite_workspace
    serve_v1(workspace, project, "train:waits_for_marker")
    (project / "marker").touch()
    with running_server(fast(workspace.settings), workspace) as url:
        send_traffic(url, workspace, rows=30)
        first = workspace.jobs.retrain("iris", since="1h")
        deadline = time.monotonic() + 30
        while workspace.jobs.get(first.id).state is not JobState.RUNNING and time.monotonic() < deadline:
            time.sleep(0.05)
        second = workspace.jobs.retrain("iris", since="1h")
        third = workspace.jobs.retrain("iris", since="1h")
        time.sleep(1.5)  # several worker ticks (0.2 s each) in which the second could have started, had it been let
        assert workspace.jobs.get(first.id).state is JobState.RUNNING
        assert workspace.jobs.get(second.id).state is JobState.QUEUED
        cancelled = run(["jobs", "cancel", third.id], workspace.settings.home, extra_env=_env(workspace))
        assert f"job {third.id} cancelled" in cancelled.stdout
        (project / "marker").unlink()
        assert wait_finished(workspace, first.id).state is JobState.SUCCEEDED
        assert wait_finished(workspace, second.id).state is JobState.SUCCEEDED
    done = {job.id: job for job in workspace.jobs.list_jobs(model="iris")}
    assert done[third.id].state is JobState.CANCELLED and done[third.id].started_at is None
    assert done[first.id].finished_at is not None and done[second.id].started_at is not None
    assert done[first.id].finished_at <= done[second.id].started_at  # one after the other
    assert [v.ref for v in workspace.registry.list_versions("iris")] == ["iris:1", "iris:2", "iris:3"]
    again = run(["jobs", "cancel", third.id], workspace.settings.home, ok=False, extra_env=_env(workspace))
    assert again.returncode == 1 and "already cancelled" in again.stderr


def test_a_running_job_whose_server_was_killed_fails_on_restart_and_a_queued_one_runs(
    tmp_path: Path, project: Path
) -> None:
    home = tmp_path / "home"
    workspace = Workspace(Settings(home=home))
    try:
        serve_v1(workspace, project, "train:waits_for_marker")
        (project / "marker").touch()
        env = {"SHIPYARD_LOG_FLUSH_S": "0.05"}
        with shipyard_serve(home, env) as server:
            send_traffic(server.url, workspace, rows=30)
            running = workspace.jobs.retrain("iris", since="1h")
            deadline = time.monotonic() + 60
            while "waiting for the marker" not in workspace.jobs.get(running.id).log:
                assert time.monotonic() < deadline, workspace.jobs.get(running.id)
                time.sleep(0.1)
            queued = workspace.jobs.retrain("iris", since="1h")
            os.kill(server.process.pid, signal.SIGKILL)  # by PID: the server only, no shutdown code runs
            assert server.process.wait(timeout=10) == -signal.SIGKILL
            assert workspace.jobs.get(running.id).state is JobState.RUNNING  # nobody has looked yet
        (project / "marker").unlink()
        with shipyard_serve(home, env):
            failed = wait_finished(workspace, running.id, timeout_s=60)
            succeeded = wait_finished(workspace, queued.id, timeout_s=90)
        assert failed.state is JobState.FAILED and failed.error is not None and "died" in failed.error
        assert "waiting for the marker" in failed.log  # the log it left is kept
        assert succeeded.state is JobState.SUCCEEDED, succeeded.log
        # the killed job's trainer died with its server: only the queued job registered a version
        assert [v.ref for v in workspace.registry.list_versions("iris")] == ["iris:1", "iris:2"]
        assert workspace.registry.get("iris:2").tags["shipyard.job"] == queued.id
    finally:
        workspace.close()


def test_retrain_wait_runs_the_job_itself_when_no_server_runs(sqlite_workspace: Workspace, project: Path) -> None:
    workspace = sqlite_workspace
    serve_v1(workspace, project)
    with running_server(fast(workspace.settings), workspace) as url:
        send_traffic(url, workspace, rows=30)
    result = run(["retrain", "iris", "--since", "1h", "--wait"], workspace.settings.home, extra_env=_env(workspace))
    assert "no server is running, so it runs here" in result.stdout
    job = workspace.jobs.list_jobs(model="iris")[0]
    assert job.state is JobState.SUCCEEDED and job.worker is not None and job.worker.startswith("cli:")
    assert job.duration_s is not None and job.duration_s > 0


def test_a_command_trainer_writes_its_model_file_and_it_is_registered(
    sqlite_workspace: Workspace, project: Path
) -> None:
    workspace = sqlite_workspace
    serve_v1(workspace, project)
    (project / "train_cmd.py").write_text(
        textwrap.dedent(
            """
            import os
            from pathlib import Path

            import pandas as pd
            import skops.io
            from sklearn.linear_model import LogisticRegression

            data = pd.read_parquet(os.environ["SHIPYARD_TRAINING_DATA"])
            features = [c for c in data.columns if not c.startswith("_")]
            model = LogisticRegression(max_iter=500).fit(data[features].to_numpy(), data["_label"])
            out = Path(os.environ["SHIPYARD_MODEL_OUTPUT"]) / "model.skops"
            out.write_bytes(skops.io.dumps(model))
            print("wrote", out.name, "for", os.environ["SHIPYARD_PARENT_REF"])
            """
        )
    )
    home = workspace.settings.home
    command = f"{sys.executable} train_cmd.py"  # this environment's Python: it has pandas and skops
    run(["models", "set-trainer", "iris", "--command", command, "--project-dir", str(project)], home)
    assert workspace.jobs.trainer("iris") == Trainer(TrainerKind.COMMAND, command, str(project))
    with running_server(fast(workspace.settings), workspace) as url:
        send_traffic(url, workspace, rows=30)
        job = wait_finished(workspace, workspace.jobs.retrain("iris", since="1h").id)
    assert job.state is JobState.SUCCEEDED, job.log
    assert "wrote model.skops for iris:1" in job.log
    assert workspace.registry.get("iris:2").parent_version == 1


def test_bad_requests_are_refused_when_the_job_is_opened(sqlite_workspace: Workspace, project: Path) -> None:
    workspace = sqlite_workspace
    home = workspace.settings.home
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    no_trainer = run(["retrain", "iris"], home, ok=False)
    assert no_trainer.returncode == 1 and "has no trainer; declare one first" in no_trainer.stderr
    bad = run(["models", "set-trainer", "iris", "train.py"], home, ok=False)
    assert "is not module:function" in bad.stderr
    assert "no model named 'nope'" in run(["models", "set-trainer", "nope", "t:m"], home, ok=False).stderr
    run(["models", "set-trainer", "iris", "train:main", "--project-dir", str(project)], home)
    ray = run(["retrain", "iris", "--engine", "ray"], home, ok=False)
    assert "Ray Job engine is not supported yet" in ray.stderr
    assert "no endpoint" in run(["retrain", "nope"], home, ok=False).stderr.lower()
    assert workspace.jobs.list_jobs() == []
    # a job whose window holds no labelled feedback fails with that reason, and nothing is registered
    result = run(["retrain", "iris", "--wait"], home, ok=False)
    assert result.returncode == 1 and "no training rows for 'iris'" in result.stdout
    assert [v.ref for v in workspace.registry.list_versions("iris")] == ["iris:1"]


def _env(workspace: Workspace) -> dict[str, str]:
    return {
        "SHIPYARD_DATABASE_URL": workspace.settings.database_url,
        "SHIPYARD_ARTIFACT_URI": workspace.settings.artifact_uri,
    }
