"""Who runs jobs: the server holding the controller lease (``JobWorker.tick`` each poll), or
``shipyard retrain --wait`` inline when no server runs (``run_inline``).

Each tick first fails the running jobs whose worker is gone, keeping the log they left: on this machine a
worker is gone when its process is (or, for this very process, when it no longer runs the job); on another
machine when it stopped renewing the job's heartbeat. Then it starts every queued job it may, at most one
per model (the store's claim sees to that) and ``max_parallel`` in all, each in its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from shipyard.config import Settings
from shipyard.core.jobs import Job, JobState
from shipyard.errors import ShipyardError
from shipyard.jobs.runner import Outcome, run_job
from shipyard.services.jobs import JobService
from shipyard.services.loop import LoopService

log = logging.getLogger("shipyard.jobs")

STALE_AFTER = timedelta(seconds=60)
"""A job on another machine whose heartbeat is older than this has lost its worker (the runner beats 4/s)."""


def worker_id(kind: str) -> str:
    """``server:HOST:PID:RANDOM`` or ``cli:...``: where the job runs, so a later process can tell it died."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobWorker:
    """Claims and runs queued jobs in background threads; ``close`` stops them and fails their jobs."""

    def __init__(
        self,
        jobs: JobService,
        settings: Settings,
        *,
        kind: str = "server",
        max_parallel: int = 2,
        loop: LoopService | None = None,
    ) -> None:
        self.jobs = jobs
        self.loop = loop
        self.settings = settings
        self.worker = worker_id(kind)
        self.max_parallel = max_parallel
        self._threads: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def is_dead(self, job: Job, heartbeat: datetime | None) -> bool:
        """Whether ``job`` (running) has lost its worker."""
        parts = (job.worker or "").split(":")
        if len(parts) == 4 and parts[1] == socket.gethostname() and parts[2].isdigit():
            if int(parts[2]) == os.getpid():
                with self._lock:
                    return job.worker != self.worker or job.id not in self._threads
            return not _pid_alive(int(parts[2]))
        beat = heartbeat or job.started_at
        return beat is None or self.jobs.clock() - beat > STALE_AFTER

    def tick(self) -> int:
        """Fail dead jobs, start what may start; returns how many jobs started."""
        if self._stop.is_set():
            return 0
        for job in self.jobs.fail_dead(self.is_dead):
            log.error("job %s failed: its worker %s died", job.id, job.worker)
        if self.loop is not None:  # validate loops whose version was approved since the last tick start a canary
            self.loop.resume_approved()
        started = 0
        while True:
            with self._lock:
                self._threads = {k: t for k, t in self._threads.items() if t.is_alive()}
                if len(self._threads) >= self.max_parallel:
                    return started
            claimed = self.jobs.claim(self.worker)
            if claimed is None:
                return started
            name = f"shipyard-job-{claimed.id}"
            thread = threading.Thread(target=self._run, args=(claimed,), name=name, daemon=True)
            with self._lock:
                self._threads[claimed.id] = thread
            thread.start()
            started += 1

    def _run(self, job: Job) -> None:
        try:
            outcome = run_job(self.jobs, self.settings, job, self.worker, stop=self._stop)
            log.info("job %s %s%s", job.id, outcome.state.value, f": {outcome.error}" if outcome.error else "")
            self._close_loop(job.id, outcome)
        except Exception:  # a bug or a store that went away: the job fails rather than hangs as running
            log.exception("job %s could not be run", job.id)
            with contextlib.suppress(ShipyardError):
                self.jobs.finish(job.id, self.worker, error="the worker failed while running it (see the server log)")

    def _close_loop(self, job_id: str, outcome: Outcome) -> None:
        """A succeeded job goes on to its endpoint's loop policy (validate, canary); a failure there is logged."""
        if self.loop is None or outcome.state is not JobState.SUCCEEDED:
            return
        try:
            self.loop.after_job(job_id)
        except Exception:  # the job itself succeeded; the loop's failure must not turn it into a failed one
            log.exception("the loop policy after job %s failed", job_id)

    def run_inline(self, job_id: str, *, poll_s: float = 0.5, timeout_s: float | None = None) -> Job:
        """Run ``job_id`` here, once no other job of its model runs (``retrain --wait`` with no server)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.jobs.get(job_id)
            if job.state.finished:
                return job
            if job.state is JobState.QUEUED:
                self.jobs.fail_dead(self.is_dead)
                claimed = self.jobs.claim(self.worker, job_id=job_id)
                if claimed is not None:
                    outcome: Outcome = run_job(self.jobs, self.settings, claimed, self.worker, stop=self._stop)
                    log.info("job %s %s", job_id, outcome.state.value)
                    self._close_loop(job_id, outcome)
                    return self.jobs.get(job_id)
            if deadline is not None and time.monotonic() > deadline:
                return job
            time.sleep(poll_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop every running trainer (their jobs fail, saying the worker shut down) and wait for the threads."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout=timeout_s)


async def run_while_leading(worker: JobWorker, leading: Callable[[], bool], interval_s: float) -> None:
    """The server's loop: tick only while this process holds the controller lease, so one process runs jobs."""
    while True:
        if leading():
            try:
                await asyncio.to_thread(worker.tick)
            except ShipyardError as exc:
                log.error("job worker tick failed: %s", exc)
            except Exception:  # keep picking jobs up after an unexpected failure
                log.exception("job worker tick failed")
        await asyncio.sleep(interval_s)
