"""The process a retraining job runs in: ``python -m shipyard.jobs.child WORK_DIR``.

A separate process, so the user's training code cannot take the server down with it, its memory is returned
when it ends, and a timeout or a cancel can stop it (the runner kills its process group). It builds the
training set, calls the trainer, and registers what the trainer made as the parent's next version with
lineage. It writes ``result.json`` on success, or a one-line ``error.txt`` (the traceback goes to the log)
and exits 1; everything it prints is the job's log.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from shipyard.jobs.contract import (
    JOB_ID_ENV,
    MODEL_OUTPUT_ENV,
    PARENT_ARTIFACT_ENV,
    PARENT_REF_ENV,
    TARGET_COLUMN_ENV,
    TRAINING_DATA_ENV,
    ParentVersion,
)

SPEC_FILE, RESULT_FILE, ERROR_FILE = "spec.json", "result.json", "error.txt"
_PR_SET_PDEATHSIG = 1


class JobFailed(Exception):
    """A failure with a one-line reason for the job's ``error``; its detail is already in the log."""


def die_with_parent() -> None:
    """Ask Linux to kill this process when the worker that started it dies (a server killed with -9)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def say(message: str) -> None:
    print(f"[shipyard] {message}", flush=True)


def main(argv: list[str]) -> int:
    parent_pid = os.getppid()
    die_with_parent()
    if os.getppid() != parent_pid:  # the worker died before the request above took effect
        return 1
    work = Path(argv[0])
    try:
        result = run(work)
    except JobFailed as exc:
        (work / ERROR_FILE).write_text(str(exc))
        say(f"failed: {exc}")
        return 1
    except Exception as exc:  # a Shipyard error (data, registration): its message is the reason
        from shipyard.errors import ShipyardError

        if not isinstance(exc, ShipyardError):
            traceback.print_exc()
        reason = str(exc) if isinstance(exc, ShipyardError) else f"{type(exc).__name__}: {exc}"
        (work / ERROR_FILE).write_text(" ".join(reason.split()))
        say(f"failed: {reason}")
        return 1
    (work / RESULT_FILE).write_text(json.dumps(result))
    say(f"registered {result['ref']}")
    return 0


def run(work: Path) -> dict[str, Any]:
    from shipyard.config import Settings
    from shipyard.core.jobs import TrainerKind
    from shipyard.services import training_set
    from shipyard.workspace import Workspace

    spec = json.loads((work / SPEC_FILE).read_text())
    workspace = Workspace(Settings.model_validate_json(spec["settings"]))
    try:
        job = workspace.jobs.get(spec["job_id"])
        params = job.params
        trainer = params.trainer
        assert trainer is not None
        parent = workspace.registry.get(params.parent)
        say(f"job {job.id}: retraining {parent.ref} behind endpoint {params.endpoint!r} with {trainer.describe()}")
        window = f"{params.since.isoformat() if params.since else 'the start'} to {params.until.isoformat()}"
        say(f"window: feedback observed from {window}")
        data = training_set.build(
            workspace.feedback,
            workspace.artifacts,
            parent,
            endpoint=params.endpoint,
            since=params.since,
            until=params.until,
            include_previous=params.include_training_data,
        )
        for note in data.notes:
            say(note)
        data_path = work / "training.parquet"
        encoded = data.parquet()
        data_path.write_bytes(encoded)
        kept = workspace.artifacts.put(encoded)
        artifact = work / "parent.artifact"
        artifact.write_bytes(workspace.registry.read_artifact(parent))
        info = ParentVersion(parent.ref, parent.flavor, data.features, artifact)
        project = Path(trainer.project_dir)
        if not project.is_dir():
            raise JobFailed(f"the trainer's project directory {project} does not exist (set-trainer --project-dir)")
        started = time.monotonic()
        if trainer.kind is TrainerKind.CALLABLE:
            model: Any = call_trainer(trainer.target, project, data_path, info)
            output: Path | None = None
        else:
            model, output = None, run_command(trainer.target, project, work, data_path, info, job.id)
        say(f"trainer finished in {time.monotonic() - started:.1f}s")
        return register(workspace, job, parent, data, kept, model, output)
    finally:
        workspace.close()


def call_trainer(target: str, project: Path, data_path: Path, parent: ParentVersion) -> Any:
    module_name, _, attribute = target.partition(":")
    sys.path.insert(0, str(project))
    os.chdir(project)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        traceback.print_exc()
        raise JobFailed(f"cannot import trainer {target} from {project}: {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise JobFailed(f"trainer {target} is a {type(obj).__name__}, not a function")
    say(f"calling {target}({data_path.name}, parent={parent.ref})")
    try:
        model = obj(data_path, parent)
    except Exception as exc:
        traceback.print_exc()
        raise JobFailed(f"trainer {target} raised {type(exc).__name__}: {exc}") from exc
    if model is None:
        raise JobFailed(f"trainer {target} returned None, not a model: return the fitted model")
    return model


def run_command(command: str, project: Path, work: Path, data_path: Path, parent: ParentVersion, job_id: str) -> Path:
    output = work / "output"
    output.mkdir(exist_ok=True)
    env = {
        **os.environ,
        TRAINING_DATA_ENV: str(data_path),
        MODEL_OUTPUT_ENV: str(output),
        PARENT_REF_ENV: parent.ref,
        PARENT_ARTIFACT_ENV: str(parent.artifact_path),
        TARGET_COLUMN_ENV: parent.target_column,
        JOB_ID_ENV: job_id,
    }
    say(f"running `{command}` in {project}")
    code = subprocess.call(command, shell=True, cwd=project, env=env, preexec_fn=die_with_parent)
    if code != 0:
        raise JobFailed(f"trainer command `{command}` exited with status {code}")
    files = sorted(p for p in output.iterdir() if p.is_file() and p.name.startswith("model."))
    if len(files) != 1:
        found = ", ".join(p.name for p in output.iterdir()) or "nothing"
        raise JobFailed(
            f"trainer command `{command}` must write one model.<ext> file into ${MODEL_OUTPUT_ENV}; found {found}"
        )
    return files[0]


def register(
    workspace: Any, job: Any, parent: Any, data: Any, kept: str, model: Any, output: Path | None
) -> dict[str, Any]:
    from shipyard.core.identity import Actor, Principal, Role
    from shipyard.errors import UnsupportedModelError
    from shipyard.services.registration import RegistrationOptions
    from shipyard.services.training_set import KEPT_TAG, LABEL

    features = data.frame[list(data.features)]
    params = job.params
    tags = {
        "shipyard.job": job.id,
        "shipyard.cause": str(job.cause.get("kind", "manual")),
        "shipyard.window_since": params.since.isoformat() if params.since else "",
        "shipyard.window_until": params.until.isoformat(),
        "shipyard.training_rows": str(len(features)),
        KEPT_TAG: kept,
    }
    if "alert" in job.cause:
        tags["shipyard.alert"] = str(job.cause["alert"])
    options = RegistrationOptions(
        name=parent.name,
        sample_input=features.head(100),
        training_data=features,
        training_target=data.frame[LABEL].to_numpy(),
        parent_version=parent.version,
        tags=tags,
        notes=f"retrained from {parent.ref} by job {job.id}",
        code_dir=params.trainer.project_dir,
        keep_signature_of=parent.signature,
    )
    actor = Actor(Principal(f"job:{job.id}", "system", frozenset({Role.OPERATOR})))
    try:
        if output is not None:
            version = workspace.registry.register_file(str(output), options, actor=actor)
        else:
            version = workspace.registry.register(model, options, actor=actor)
    except UnsupportedModelError as exc:
        what = type(model).__name__ if output is None else output.name
        raise JobFailed(f"the trainer's result ({what}) is not a model Shipyard can save: {exc}") from exc
    return {
        "ref": version.ref,
        "version": version.version,
        "parent": parent.ref,
        "training_data_hash": version.training_data_hash,
        "training_data": kept,
        "rows": len(features),
        "feedback_rows": data.feedback_rows,
        "previous_rows": data.previous_rows,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
