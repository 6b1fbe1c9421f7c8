"""The policy that closes the loop: what the lease holder does once a retraining job registered a version.

Per endpoint (``shipyard loop set``): ``manual`` stops after registering; ``validate`` judges the version
against the endpoint's stable one on the policy's holdout (``ValidationService``, whose run is stored on the
version as evidence) and waits for a person's approval, after which the lease holder starts the canary;
``auto`` starts the canary as soon as the gates pass. Whatever opened the job (a person, an alert's action),
its success leads here. Each step is audited as the controller with the job and its cause, put in the
webhook outbox (``loop.validated``, ``loop.validation_failed``, ``loop.canary_started`` ...), and appended to
the job's result, where ``shipyard jobs show`` reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from shipyard.core.identity import Actor, Principal, Role
from shipyard.core.jobs import Job, JobState
from shipyard.core.loop import LoopMode, LoopPolicy, LoopStep, StepKind
from shipyard.core.versions import VersionStatus
from shipyard.errors import EndpointNotFoundError, ShipyardError
from shipyard.monitoring.validation_gates import GateSpec
from shipyard.rollouts.spec import RolloutSpec
from shipyard.services.audit import record
from shipyard.services.endpoints import endpoint_target
from shipyard.services.jobs import JobService
from shipyard.services.rollouts import RolloutService
from shipyard.services.validation import ValidationService
from shipyard.store import loops as repo
from shipyard.store import outbox

log = logging.getLogger("shipyard.loop")

LOOP_ACTOR = Actor(Principal("controller", "system", frozenset({Role.OPERATOR})))
"""Who the loop acts as in the audit trail: the controller, as the rollouts it drives."""

OUTBOX_EVENTS = {
    StepKind.VALIDATED: "loop.validated",
    StepKind.VALIDATION_FAILED: "loop.validation_failed",
    StepKind.AWAITING_APPROVAL: "loop.awaiting_approval",
    StepKind.CANARY_STARTED: "loop.canary_started",
    StepKind.CANARY_REFUSED: "loop.canary_refused",
    StepKind.STOPPED: "loop.stopped",
}
"""Steps a webhook receiver hears about; ``registered`` is the job's own news."""


class LoopService:
    """Stores each endpoint's policy and runs it after a job; the job worker and the CLI call it."""

    def __init__(
        self,
        jobs: JobService,
        validation: ValidationService,
        rollouts: RolloutService,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.jobs = jobs
        self.validation = validation
        self.rollouts = rollouts
        self.registry = jobs.registry
        self.db = jobs.db
        self.clock = clock or jobs.clock

    # -- the policy ---------------------------------------------------------------------------------

    def set_policy(self, endpoint: str, policy: LoopPolicy | None, *, actor: Actor) -> None:
        """Set (or, with None, remove) ``endpoint``'s policy; its gates and canary options are checked now."""
        if policy is not None:
            GateSpec.parse(
                minimum=policy.minimum, maximum=policy.maximum, max_regression=policy.effective_max_regression
            )
            RolloutSpec.create("canary", "check:1", **dict(policy.canary))
        with self.db.write() as conn:
            exists, before = repo.get(conn, endpoint)
            if not exists:
                raise EndpointNotFoundError(f"no endpoint {endpoint!r}; `shipyard endpoints list` shows them")
            after = {"policy": policy.to_dict(), "pending": None} if policy is not None else None
            repo.put(conn, endpoint, after)
            record(
                conn,
                actor,
                "endpoint.set_loop",
                endpoint_target(endpoint),
                before=(before or {}).get("policy"),
                after=after["policy"] if after is not None else None,
                at=self.clock(),
            )

    def policy(self, endpoint: str) -> tuple[LoopPolicy | None, dict[str, Any] | None]:
        """The endpoint's policy and the version it waits on (``{"job", "version"}``), if any."""
        with self.db.read() as conn:
            exists, stored = repo.get(conn, endpoint)
        if not exists:
            raise EndpointNotFoundError(f"no endpoint {endpoint!r}; `shipyard endpoints list` shows them")
        if not stored or not stored.get("policy"):
            return None, None
        return LoopPolicy.from_dict(stored["policy"]), stored.get("pending")

    def for_rollout(self, endpoint: str, rollout_id: str) -> dict[str, Any] | None:
        """The job whose loop started ``rollout_id``, and its steps: what ``rollout status`` says opened it."""
        for job in self.jobs.list_jobs(limit=50):
            steps = (job.result or {}).get("loop") or []
            if job.endpoint == endpoint and any(s.get("detail", {}).get("rollout") == rollout_id for s in steps):
                return {"job": job.id, "cause": dict(job.cause), "steps": steps}
        return None

    # -- after a job ---------------------------------------------------------------------------------

    def after_job(self, job_id: str) -> list[LoopStep]:
        """Run the endpoint's policy for a succeeded retraining job; nothing happens without a policy."""
        job = self.jobs.get(job_id)
        ref = job.version_ref
        if job.state is not JobState.SUCCEEDED or job.endpoint is None or ref is None:
            return []
        try:
            policy, _ = self.policy(job.endpoint)
        except EndpointNotFoundError:
            return []  # deleted while the job ran
        if policy is None:
            return []
        steps = [self._step(StepKind.REGISTERED, f"job {job.id} registered {ref}", version=ref)]
        pending: dict[str, Any] | None = None
        if policy.mode is LoopMode.MANUAL:
            steps.append(
                self._step(
                    StepKind.STOPPED,
                    f"manual loop: stopped after registering {ref}; validate and roll it out yourself "
                    f"(shipyard validate {ref} ... / shipyard rollout start {job.endpoint} --to {ref} ...)",
                    version=ref,
                )
            )
        else:
            passed, step = self._validate(job.endpoint, ref, policy)
            steps.append(step)
            if passed and policy.mode is LoopMode.VALIDATE:
                steps.append(
                    self._step(
                        StepKind.AWAITING_APPROVAL,
                        f"{ref} passed its gates; the canary starts once it is approved: shipyard models approve {ref}",
                        version=ref,
                    )
                )
                pending = {"job": job.id, "version": ref}
            elif passed:
                steps.append(self._canary(job.endpoint, ref, policy))
        self._commit(job, steps, pending=pending, set_pending=policy.mode is LoopMode.VALIDATE and pending is not None)
        return steps

    def resume_approved(self) -> int:
        """Start the canary of every version a ``validate`` loop waits on that was approved; returns how many."""
        with self.db.read() as conn:
            waiting = repo.pending(conn)
        started = 0
        for endpoint, stored in waiting:
            pending = stored["pending"]
            ref = str(pending["version"])
            try:
                version = self.registry.get(ref)
                policy = LoopPolicy.from_dict(stored["policy"])
                job = self.jobs.get(str(pending["job"]))
            except ShipyardError as exc:
                log.warning("loop of %s: the version it waits on is gone (%s); it waits no more", endpoint, exc)
                with self.db.write() as conn:
                    repo.put(conn, endpoint, {**stored, "pending": None})
                continue
            if version.status is VersionStatus.REGISTERED:
                continue
            if version.status is VersionStatus.ARCHIVED:
                step = self._step(StepKind.STOPPED, f"{ref} was archived before approval; nothing rolled out")
            else:
                step = self._canary(endpoint, ref, policy)
                started += step.kind is StepKind.CANARY_STARTED
            self._commit(job, [step], pending=None, set_pending=True)
        return started

    # -- the steps ------------------------------------------------------------------------------------

    def _validate(self, endpoint: str, ref: str, policy: LoopPolicy) -> tuple[bool, LoopStep]:
        assert policy.holdout is not None and policy.target is not None
        try:
            gates = GateSpec.parse(
                minimum=policy.minimum, maximum=policy.maximum, max_regression=policy.effective_max_regression
            )
            result = self.validation.validate(
                ref, policy.holdout, policy.target, champion=endpoint, gates=gates, actor=LOOP_ACTOR
            )
        except ShipyardError as exc:  # a holdout that went away, a gate that does not fit the model
            return False, self._step(
                StepKind.VALIDATION_FAILED, f"{ref} could not be validated: {exc}; nothing rolled out", version=ref
            )
        detail = {
            "validation": result.id,
            "champion": result.champion,
            "gates": [g.to_dict() for g in result.gates],
        }
        if result.passed:
            return True, self._step(
                StepKind.VALIDATED, f"{ref} passed its gates against {result.champion}", version=ref, **detail
            )
        failed = "; ".join(f"{g.name}: {g.detail}" for g in result.failed_gates)
        return False, self._step(
            StepKind.VALIDATION_FAILED,
            f"{ref} failed its gates against {result.champion}, nothing rolled out: {failed}",
            version=ref,
            **detail,
        )

    def _canary(self, endpoint: str, ref: str, policy: LoopPolicy) -> LoopStep:
        try:
            state = self.rollouts.start(endpoint, to=ref, strategy="canary", actor=LOOP_ACTOR, **dict(policy.canary))
        except ShipyardError as exc:  # a rollout already in progress, the approval rule, a failed smoke test
            return self._step(StepKind.CANARY_REFUSED, f"the canary of {ref} was not started: {exc}", version=ref)
        return self._step(
            StepKind.CANARY_STARTED,
            f"canary {state.id} started: {state.stable} -> {ref}, steps "
            f"{', '.join(f'{s:.0%}' for s in state.spec.steps)}; its gates promote or roll back",
            version=ref,
            rollout=state.id,
        )

    def _step(self, kind: StepKind, message: str, **detail: Any) -> LoopStep:
        return LoopStep(kind, self.clock().isoformat(), message, detail)

    def _commit(
        self, job: Job, steps: Sequence[LoopStep], *, pending: dict[str, Any] | None, set_pending: bool
    ) -> None:
        """The steps into the job's result, the audit trail and the outbox, in one transaction."""
        assert job.endpoint is not None
        now = self.clock()
        cause = {"job": job.id, "job_cause": dict(job.cause)}
        with self.db.write() as conn:
            repo.add_steps(conn, job.id, [s.to_dict() for s in steps])
            if set_pending:
                exists, stored = repo.get(conn, job.endpoint)
                if exists and stored:
                    repo.put(conn, job.endpoint, {**stored, "pending": pending})
            for step in steps:
                record(
                    conn,
                    LOOP_ACTOR,
                    f"loop.{step.kind.value}",
                    endpoint_target(job.endpoint),
                    after={**step.to_dict(), **cause},
                    at=now,
                )
            events = [
                (job.endpoint, OUTBOX_EVENTS[s.kind], _payload(job, s, OUTBOX_EVENTS[s.kind]))
                for s in steps
                if s.kind in OUTBOX_EVENTS
            ]
            outbox.add(conn, events, now)  # last: on PostgreSQL it takes the outbox's lock
        for step in steps:
            log.info("loop of %s (job %s): %s", job.endpoint, job.id, step.message)


def _payload(job: Job, step: LoopStep, event: str) -> dict[str, Any]:
    """What a webhook receiver gets: the endpoint, the job and why it ran, the step and its evidence."""
    return {
        "event": event,
        "endpoint": job.endpoint,
        "job": job.id,
        "cause": dict(job.cause),
        "version": step.detail.get("version"),
        "message": step.message,
        "at": step.at,
        "evidence": dict(step.detail),
    }
