"""``shipyard retrain``, ``shipyard jobs list|show|logs|cancel`` and ``shipyard models set-trainer``.

They work on the local store. ``retrain --wait`` waits for the server holding the controller lease to run the
job, or, when no server runs, runs it here and now.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.context import console, print_json, state

if TYPE_CHECKING:
    from shipyard.core.jobs import Job

app = typer.Typer(
    help="Retraining jobs: list them, show one, read its log, cancel it.\n\nExample: shipyard jobs list --model fraud",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JobArg = Annotated[str, typer.Argument(help="Job id, as `shipyard jobs list` shows it.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def set_trainer(
    name: Annotated[str, typer.Argument(help="Model name, e.g. fraud.")],
    target: Annotated[
        str | None, typer.Argument(help="The training function as module:function, e.g. train:main.")
    ] = None,
    command: Annotated[
        str | None, typer.Option("--command", help="A shell command instead, e.g. 'python train.py'.")
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="Where the module or command lives; the current directory by default."),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Forget the model's trainer.")] = False,
) -> None:
    """Declare how a model is retrained: a function main(data_path, parent) returning the model, or a command.

    The function is imported from --project-dir (or the current directory) in a separate process; a command runs
    there with SHIPYARD_TRAINING_DATA set and writes model.<ext> into SHIPYARD_MODEL_OUTPUT.
    Example: shipyard models set-trainer fraud train:main --project-dir ~/fraud
    """
    from shipyard.core.jobs import Trainer
    from shipyard.errors import InvalidArgumentError

    jobs = state.workspace.jobs
    if remove:
        if target is not None or command is not None:
            raise InvalidArgumentError("--remove takes no trainer; give either --remove or the trainer")
        jobs.set_trainer(name, None, actor=state.actor)
        console.print(f"{name} has no trainer now")
        return
    directory = (project_dir or Path.cwd()).expanduser().resolve()
    if not directory.is_dir():
        raise InvalidArgumentError(f"project directory {directory} does not exist")
    trainer = Trainer.parse(callable_target=target, command=command, project_dir=str(directory))
    jobs.set_trainer(name, trainer, actor=state.actor)
    console.print(f"{name} is retrained by {trainer.describe()}")


def retrain(
    endpoint: Annotated[str, typer.Argument(help="Endpoint name: its model's serving version is the parent.")],
    since: Annotated[str, typer.Option("--since", help="How far back feedback is read: 30d, 12h, or 'all'.")] = "30d",
    include_training_data: Annotated[
        bool,
        typer.Option("--include-training-data", help="Add the parent's training set, when a job kept one."),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait for the job to end; with no server running, run it here."),
    ] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="Stop the trainer after this long: 10m, 1h.")] = "1h",
    engine: Annotated[str, typer.Option("--engine", help="local (a subprocess); ray is not supported yet.")] = "local",
    as_json: JsonOption = False,
) -> None:
    """Retrain an endpoint's model on the feedback of a window joined to its logged inputs; register the result.

    Exits 1 when --wait sees the job fail. Example: shipyard retrain fraud --since 30d --wait
    """
    from shipyard.rollouts.spec import parse_duration

    jobs = state.workspace.jobs
    job = jobs.retrain(
        endpoint,
        since=since,
        include_training_data=include_training_data,
        timeout_s=parse_duration(timeout, option="timeout"),
        engine=engine,
        actor=state.actor,
    )
    if not wait:
        _say(job, as_json, f"job {job.id} queued: retrain {job.params.parent} (shipyard jobs show {job.id})")
        return
    holder = jobs.controller_holder()
    if holder is None:
        from shipyard.jobs.worker import JobWorker

        if not as_json:
            console.print(f"job {job.id}: no server is running, so it runs here")
        job = JobWorker(jobs, state.local_settings(), kind="cli", loop=state.workspace.loop).run_inline(job.id)
    else:
        if not as_json:
            console.print(f"job {job.id}: queued for the server ({holder.split(':')[1]}); waiting")
        job = _wait(job.id)
    _say(job, as_json, _summary(job))
    if job.state.value != "succeeded":
        raise typer.Exit(1)


def _wait(job_id: str, poll_s: float = 0.5) -> Job:
    jobs = state.workspace.jobs
    while True:
        job = jobs.get(job_id)
        if job.state.finished:
            return job
        time.sleep(poll_s)


def _summary(job: Job) -> str:
    if job.state.value == "succeeded":
        result = job.result or {}
        return (
            f"job {job.id} succeeded in {job.duration_s or 0:.1f}s: registered {job.version_ref} "
            f"(parent {result.get('parent')}, {result.get('rows')} training rows)"
        )
    return f"job {job.id} {job.state.value}: {job.error or 'no reason given'} (shipyard jobs logs {job.id})"


def _say(job: Job, as_json: bool, text: str) -> None:
    if as_json:
        print_json(job.to_dict())
    else:
        console.print(text, markup=False)


@app.command("list")
def list_jobs(
    model: Annotated[str | None, typer.Option("--model", help="Only this model's jobs.")] = None,
    job_state: Annotated[
        str | None, typer.Option("--state", help="queued, running, succeeded, failed or cancelled.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first.

    Example: shipyard jobs list --model fraud --state failed
    """
    jobs = state.workspace.jobs.list_jobs(model=model, state=job_state, limit=limit)
    if as_json:
        print_json([job.to_dict() for job in jobs])
        return
    if not jobs:
        console.print("no jobs yet; `shipyard retrain --help` shows how to start one")
        return
    from rich.table import Table

    table = Table(title="jobs")
    for column in ("id", "model", "state", "parent", "result", "created", "duration", "cause"):
        table.add_column(column)
    for job in jobs:
        duration = f"{job.duration_s:.1f}s" if job.duration_s is not None else "-"
        outcome = job.version_ref or (job.error or "-")[:60]
        table.add_row(
            job.id,
            job.model,
            job.state.value,
            job.params.parent,
            outcome,
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            duration,
            str(job.cause.get("kind", "-")),
        )
    console.print(table)


@app.command("show")
def show(job_id: JobArg, as_json: JsonOption = False) -> None:
    """Show one job: state, parent, window, result or error, duration.

    Example: shipyard jobs show 3f2a9c1b7d4e8f60
    """
    job = state.workspace.jobs.get(job_id)
    if as_json:
        print_json(job.to_dict())
        return
    params = job.params
    lines = [
        f"job       {job.id} ({job.kind}, engine {job.engine})",
        f"state     {job.state.value}",
        f"model     {job.model} (endpoint {job.endpoint}, parent {params.parent})",
        f"window    {params.since.isoformat() if params.since else 'all'} to {params.until.isoformat()}",
        f"trainer   {params.trainer.describe() if params.trainer else '-'}",
        f"cause     {', '.join(f'{k}={v}' for k, v in job.cause.items())}",
        f"created   {job.created_at.isoformat()} by {job.created_by}",
        f"duration  {f'{job.duration_s:.1f}s' if job.duration_s is not None else '-'}",
    ]
    if job.version_ref:
        result = job.result or {}
        lines.append(
            f"version   {job.version_ref} ({result.get('rows')} rows, data {result.get('training_data_hash')})"
        )
    if job.error:
        lines.append(f"error     {job.error}")
    for step in (job.result or {}).get("loop") or []:  # what the endpoint's loop policy did next
        lines.append(f"loop      {step['kind']}: {step['message']}")
    console.print("\n".join(lines), markup=False, highlight=False)


@app.command("logs")
def logs(job_id: JobArg) -> None:
    """Print a job's log: what the trainer printed, its traceback if it raised, Shipyard's own lines.

    Example: shipyard jobs logs 3f2a9c1b7d4e8f60
    """
    sys.stdout.write(state.workspace.jobs.get(job_id).log)


@app.command("cancel")
def cancel(job_id: JobArg) -> None:
    """Cancel a queued job (it never runs) or a running one (its trainer is stopped).

    Example: shipyard jobs cancel 3f2a9c1b7d4e8f60
    """
    job = state.workspace.jobs.cancel(job_id, actor=state.actor)
    console.print(f"job {job.id} cancelled")
