"""Runs one claimed job in a child process (``shipyard.jobs.child``): its log streamed into the store, its
timeout and a cancel enforced by killing the child's process group, its end recorded.

The child is the leader of its own process group, so a command trainer's own processes die with it; it asks
Linux to kill it if this worker dies (``PR_SET_PDEATHSIG``), so a server killed with -9 leaves no trainer
behind to register a version for a job the next server has already marked failed.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shipyard.config import Settings
from shipyard.core.jobs import Job, JobState
from shipyard.errors import ShipyardError
from shipyard.jobs.child import ERROR_FILE, RESULT_FILE, SPEC_FILE
from shipyard.services.jobs import JobService

log = logging.getLogger("shipyard.jobs")

POLL_S = 0.25
"""How often the runner ships new log lines and checks for a cancel or the timeout."""


@dataclass(frozen=True, slots=True)
class Outcome:
    state: JobState
    error: str | None


def run_job(
    jobs: JobService,
    settings: Settings,
    job: Job,
    worker: str,
    *,
    stop: threading.Event | None = None,
) -> Outcome:
    """Run ``job`` (already claimed by ``worker``) to its end; ``stop`` set means this worker is shutting down."""
    work = settings.home.expanduser().resolve() / "jobs" / job.id
    work.mkdir(parents=True, exist_ok=True)
    spec = work / SPEC_FILE
    spec.touch(mode=0o600)
    spec.write_text(json.dumps({"job_id": job.id, "settings": settings.model_dump_json()}))
    log_path = work / "job.log"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "SHIPYARD_HOME": str(settings.home.expanduser().resolve()),
        "SHIPYARD_DATABASE_URL": settings.database_url,
        "SHIPYARD_ARTIFACT_URI": settings.artifact_uri,
    }
    env.pop("SHIPYARD_URL", None)  # the trainer's shipyard.load reads the same store, not a server
    timeout_s = job.params.timeout_s
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "shipyard.jobs.child", str(work)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    started = time.monotonic()
    reader = _LogReader(log_path)
    stopped: str | None = None
    while True:
        try:
            code = process.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            code = None
        _ship(jobs, job.id, reader.new())
        if code is not None:
            break
        if time.monotonic() - started > timeout_s:
            stopped = f"timed out after {timeout_s:g}s: the trainer was stopped (raise the job's timeout?)"
        elif stop is not None and stop.is_set():
            stopped = "the worker running it was shut down; the trainer was stopped"
        elif _state(jobs, job.id) is JobState.CANCELLED:
            stopped = "cancelled"
        if stopped is not None:
            _kill(process)
            break
    _ship(jobs, job.id, reader.new())
    if stopped == "cancelled":
        _ship(jobs, job.id, "[shipyard] cancelled: the trainer was stopped\n")
        return Outcome(JobState.CANCELLED, None)
    if stopped is not None:
        _ship(jobs, job.id, f"[shipyard] failed: {stopped}\n")
        return _finish(jobs, job, worker, None, stopped)
    result_file, error_file = work / RESULT_FILE, work / ERROR_FILE
    if process.returncode == 0 and result_file.is_file():
        return _finish(jobs, job, worker, json.loads(result_file.read_text()), None)
    if error_file.is_file():  # the child said why, in the log too
        reason = error_file.read_text().strip()
    else:
        reason = f"the job's process ended with status {process.returncode} before saying why (see the log)"
        _ship(jobs, job.id, f"[shipyard] failed: {reason}\n")
    return _finish(jobs, job, worker, None, reason)


def _finish(jobs: JobService, job: Job, worker: str, result: dict[str, object] | None, error: str | None) -> Outcome:
    recorded = jobs.finish(job.id, worker, result=result, error=error)
    if not recorded:  # cancelled, or declared dead, while it ran: the store's word stands
        current = jobs.get(job.id)
        if result is not None:
            _ship(
                jobs,
                job.id,
                f"[shipyard] {result.get('ref')} was registered, but the job was already {current.state}\n",
            )
        return Outcome(current.state, current.error)
    return Outcome(JobState.FAILED if error is not None else JobState.SUCCEEDED, error)


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _state(jobs: JobService, job_id: str) -> JobState | None:
    try:
        return jobs.state_of(job_id)
    except ShipyardError as exc:  # the store is away for a moment: keep running, ask again next poll
        log.warning("could not read job %s: %s", job_id, exc)
        return None


def _ship(jobs: JobService, job_id: str, text: str) -> None:
    try:
        jobs.append_log(job_id, text)
    except ShipyardError as exc:
        log.warning("could not store the log of job %s: %s", job_id, exc)


class _LogReader:
    """The child's output file, read from where the last read stopped; a character cut in two waits for its end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def new(self) -> str:
        with self.path.open("rb") as source:
            source.seek(self.offset)
            data = source.read()
        self.offset += len(data)
        return str(self.decoder.decode(data))
