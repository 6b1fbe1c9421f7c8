"""Rollout use cases: start (after a smoke test), status, manual moves, and the controller's tick.

Every change goes through ``_commit``: the new state, its events, and, when a rollout finishes, the
endpoint's move to the winner, in one transaction, which also puts the events in the webhook outbox; the
server holding the controller lease delivers them (``services.webhooks``), whichever process made the change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shipyard.core.endpoints import Arm
from shipyard.core.identity import LOCAL_ACTOR, Actor
from shipyard.core.inference import warm_rows
from shipyard.core.refs import ModelRef
from shipyard.core.versions import VersionStatus, check_approved
from shipyard.errors import ConflictError, InvalidArgumentError, ModelLoadError, NotFoundError, ShipyardError
from shipyard.rollouts import machine
from shipyard.rollouts.evidence import ArmEvidence, RewardMoments, ShadowComparison
from shipyard.rollouts.gates import CanaryGates, canary_verdict, shadow_report
from shipyard.rollouts.machine import EventKind, RolloutState, RolloutStatus, Transition
from shipyard.rollouts.sequential import SequentialState, ab_analysis
from shipyard.rollouts.spec import Analysis, RolloutSpec, Strategy
from shipyard.services.audit import record
from shipyard.services.endpoints import EndpointService, endpoint_target
from shipyard.services.registry import RegistryService
from shipyard.services.validation_rule import check_validated
from shipyard.store import endpoints as endpoint_repo
from shipyard.store import feedback as feedback_repo
from shipyard.store import outbox
from shipyard.store import registry as registry_repo
from shipyard.store import rollouts as repo

SHADOW_ARM = "shadow_compare"
CONTROLLER_LEASE = "rollout-controller"


class RolloutNotFoundError(NotFoundError):
    """The endpoint has never had a rollout."""

    code = "rollout_not_found"


@dataclass(frozen=True, slots=True)
class RolloutView:
    """What ``rollout status`` shows: the state, this step's evidence per arm, and what happens next."""

    state: RolloutState
    evidence: Mapping[str, ArmEvidence]
    shadow: ShadowComparison | None
    next_action: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.state.to_dict(),
            "next_action": self.next_action,
            "evidence": {arm: summary(ev) for arm, ev in self.evidence.items()},
        }
        if self.shadow is not None:
            # Sampled requests that never reached a comparison, by reason (core.evidence.SHADOW_DROP_REASONS).
            out["shadow_report"] = {**shadow_report(self.shadow).to_dict(), "dropped": dict(self.shadow.dropped)}
        return out


def summary(evidence: ArmEvidence) -> dict[str, Any]:
    """The figures a person reads off one arm's evidence."""
    p50, p99 = evidence.latency_quantile(0.5), evidence.latency_quantile(0.99)
    return {
        "requests": evidence.requests,
        "errors": evidence.errors,
        "error_rate": evidence.error_rate,
        "latency_p50_ms": None if p50 != p50 else round(p50, 3),
        "latency_p99_ms": None if p99 != p99 else round(p99, 3),
        "predictions": dict(evidence.predictions),
        "rewards": evidence.reward_n,
    }


class RolloutService:
    """The one place rollouts change; the CLI, the HTTP routes and the controller all come here."""

    def __init__(
        self,
        registry: RegistryService,
        endpoints: EndpointService,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.registry = registry
        self.endpoints = endpoints
        self.db = registry.db
        self.clock = clock or registry.clock

    # -- starting ----------------------------------------------------------------------------

    def start(
        self, endpoint: str, *, to: str, strategy: str, actor: Actor = LOCAL_ACTOR, **options: Any
    ) -> RolloutState:
        """Validate, load and smoke-test the candidate, then begin; the stable version is untouched on refusal."""
        resolved = self.endpoints.resolve(self.endpoints.get(endpoint))
        stable = resolved.version
        candidate = self.registry.get(to)
        if candidate.status is VersionStatus.ARCHIVED:
            raise ConflictError(f"{candidate.ref} is archived; it cannot be rolled out")
        if resolved.endpoint.require_approval:
            check_approved(candidate, endpoint=endpoint, action="roll out to")
        if resolved.endpoint.require_validation:
            with self.db.read() as conn:
                check_validated(conn, candidate, endpoint=endpoint, action="roll out to")
        if candidate.ref == stable.ref:
            raise InvalidArgumentError(f"endpoint {endpoint!r} already serves {stable.ref}; nothing to roll out")
        missing = [f for f in candidate.signature.names if f not in stable.signature.names]
        if missing:
            raise InvalidArgumentError(
                f"rollout refused: {candidate.ref} needs features that callers of {endpoint!r} do not send "
                f"(the stable {stable.ref} does not take them): {missing}"
            )
        spec = RolloutSpec.create(strategy, candidate.ref, **options)
        with self.db.read() as conn:
            current = repo.active_id(conn, endpoint)
        if current is not None:  # checked before loading a model; the store's constraint still settles races
            raise ConflictError(
                f"endpoint {endpoint!r} already has rollout {current} in progress; promote or abort it first"
            )
        self._smoke_test(candidate.ref)
        transition = machine.start(
            spec, rollout_id=uuid.uuid4().hex[:12], endpoint=endpoint, stable=stable.ref, now=self.clock()
        )
        self._commit(transition, actor, created=True)
        return transition.state

    def _smoke_test(self, ref: str) -> None:
        version = self.registry.get(ref)
        try:
            loaded = self.registry.load(version)
            loaded.predict_batch(warm_rows(version))
        except ShipyardError as exc:
            raise ModelLoadError(f"rollout refused: candidate {ref} failed to load or its smoke test: {exc}") from exc

    # -- reading -----------------------------------------------------------------------------

    def current(self, endpoint: str) -> RolloutState:
        """The endpoint's active rollout, else its latest one."""
        self.endpoints.get(endpoint)
        with self.db.read() as conn:
            rollout_id = repo.latest_id(conn, endpoint)
            data = repo.get_state(conn, rollout_id) if rollout_id else None
        if data is None:
            raise RolloutNotFoundError(f"endpoint {endpoint!r} has no rollout; start one with `shipyard rollout start`")
        return RolloutState.from_dict(data)

    def status(self, endpoint: str) -> RolloutView:
        """The state, this step's merged evidence, and the next action, for `rollout status`."""
        state = self.current(endpoint)
        evidence, shadow = self.step_evidence(state)
        return RolloutView(state, evidence, shadow, machine.next_action(state, self.clock()))

    def active_states(self) -> dict[str, RolloutState]:
        with self.db.read() as conn:
            return {e: RolloutState.from_dict(s) for e, s in repo.active_states(conn).items()}

    def step_evidence(self, state: RolloutState) -> tuple[dict[str, ArmEvidence], ShadowComparison | None]:
        """Every worker's and replica's evidence for the current step, merged per arm."""
        with self.db.read() as conn:
            rows = repo.evidence_rows(conn, state.id, state.step_index)
        arms: dict[str, ArmEvidence] = {}
        shadow: ShadowComparison | None = None
        for arm, data in rows:
            if arm == SHADOW_ARM:
                part = ShadowComparison.from_dict(data)
                shadow = part if shadow is None else shadow.merge(part)
            else:
                part_ev = ArmEvidence.from_dict(data)
                arms[arm] = arms[arm].merge(part_ev) if arm in arms else part_ev
        return arms, shadow

    # -- manual moves ------------------------------------------------------------------------

    def promote(self, endpoint: str, *, actor: Actor = LOCAL_ACTOR) -> RolloutState:
        """Move a canary one step on, or make the candidate stable now (other strategies)."""
        return self._manual(endpoint, lambda s, now: machine.promote(s, now), actor)

    def pause(self, endpoint: str, *, actor: Actor = LOCAL_ACTOR) -> RolloutState:
        """Freeze traffic where it is; time paused does not count toward the step."""
        return self._manual(endpoint, machine.pause, actor)

    def resume(self, endpoint: str, *, actor: Actor = LOCAL_ACTOR) -> RolloutState:
        """Continue a paused rollout."""
        return self._manual(endpoint, machine.resume, actor)

    def abort(self, endpoint: str, *, reason: str = "", actor: Actor = LOCAL_ACTOR) -> RolloutState:
        """Send all traffic back to the stable version at once."""
        return self._manual(endpoint, lambda s, now: machine.abort(s, now, reason=reason), actor)

    def _manual(
        self, endpoint: str, move: Callable[[RolloutState, datetime], Transition], actor: Actor
    ) -> RolloutState:
        state = self.current(endpoint)
        if not state.status.active:
            raise ConflictError(f"rollout {state.id} on {endpoint!r} is already {state.status.value}")
        transition = move(state, self.clock())
        self._commit(transition, actor, previous=state)
        return transition.state

    # -- the controller's tick ---------------------------------------------------------------

    def tick(self, state: RolloutState, *, actor: Actor = LOCAL_ACTOR) -> Transition:
        """Analyse the current step and advance one rollout; persisted when anything changed.

        ``actor`` is whoever drives the tick: the server's controller names itself (a system principal).
        """
        transition = machine.tick(state, self.analyze(state), self.clock())
        if transition.changed:
            self._commit(transition, actor, previous=state)
        return transition

    def analyze(self, state: RolloutState) -> Analysis | None:
        """The stats module's verdict on this step's evidence, reduced to what the state machine acts on."""
        strategy = state.spec.strategy
        if strategy in (Strategy.REPLACE, Strategy.SHADOW):
            return None
        if strategy is Strategy.AB:
            return self._ab(state)
        arms, _ = self.step_evidence(state)
        stable = arms.get(Arm.STABLE.value, ArmEvidence.empty())
        candidate = arms.get(Arm.CANDIDATE.value, ArmEvidence.empty())
        gates = CanaryGates(**state.spec.gates.to_dict())
        verdict = canary_verdict(stable, candidate, gates)
        evidence = {**verdict.to_dict(), "stable": summary(stable), "candidate": summary(candidate)}
        # The state machine words the outcome itself ("held", "rolled back"); pass only the reason on.
        reason = verdict.message.removeprefix(f"{verdict.verdict.value}: ")
        return Analysis(verdict.verdict, reason, evidence)

    def _ab(self, state: RolloutState) -> Analysis:
        with self.db.read() as conn:
            moments = feedback_repo.reward_moments(conn, state.endpoint, state.started_at)
        stable = RewardMoments(*moments.get(Arm.STABLE.value, (0, 0.0, 0.0)))
        candidate = RewardMoments(*moments.get(Arm.CANDIDATE.value, (0, 0.0, 0.0)))
        previous = SequentialState.from_dict(state.carry) if state.carry else None
        result = ab_analysis(stable, candidate, alpha=state.spec.alpha, previous=previous)
        return Analysis.for_ab(result.winner, result.message, result.to_dict(), carry=result.state.to_dict())

    # -- evidence and the controller lease ------------------------------------------------------

    def record_evidence(self, worker: str, snapshots: Sequence[Any]) -> None:
        """Upsert a serving worker's running totals (``rollout_id``, ``step``, ``arm``, ``evidence``)."""
        if not snapshots:
            return
        now = self.clock()
        with self.db.write() as conn:
            for snap in snapshots:
                repo.upsert_evidence(conn, snap.rollout_id, snap.step, snap.arm, worker, snap.evidence.to_dict(), now)

    def hold_controller_lease(self, holder: str, *, ttl_s: float) -> bool:
        """Take or renew the lease that lets one process (of all workers and replicas) drive rollouts."""
        now = self.clock()
        with self.db.write() as conn:
            return repo.acquire_lease(
                conn, CONTROLLER_LEASE, holder, now=now, expires_at=now + timedelta(seconds=ttl_s)
            )

    def release_controller_lease(self, holder: str) -> None:
        """Give the lease up (a clean shutdown), so another process takes over now rather than at expiry."""
        with self.db.write() as conn:
            repo.release_lease(conn, CONTROLLER_LEASE, holder)

    # -- persistence -------------------------------------------------------------------------

    def _commit(
        self, transition: Transition, actor: Actor, *, created: bool = False, previous: RolloutState | None = None
    ) -> None:
        state = transition.state
        finished = not state.status.active
        now = self.clock()
        events: list[dict[str, Any]] = [
            {"at": e.at, "kind": e.kind.value, "message": e.message, "evidence": dict(e.evidence)}
            for e in transition.events
        ]
        with self.db.write() as conn:
            if created:
                repo.create(conn, state.id, state.endpoint, state.status.value, state.to_dict(), now)
                if finished:
                    repo.save(conn, state.id, status=state.status.value, state=state.to_dict(), finished=True, now=now)
            else:
                repo.save(conn, state.id, status=state.status.value, state=state.to_dict(), finished=finished, now=now)
            repo.add_events(conn, state.id, events)
            if state.status is RolloutStatus.COMPLETED:
                self._make_stable(conn, state, now)
            _audit(conn, actor, transition, previous, now)
            # Last: on PostgreSQL it waits for other writers of events, and must hold no other lock then.
            outbox.add(conn, [(state.endpoint, p["event"], p) for p in _webhook_payloads(state, events)], now)

    def _make_stable(self, conn: Any, state: RolloutState, now: datetime) -> None:
        """The winner becomes what the endpoint serves: its alias moves, or its pinned version changes."""
        endpoint = endpoint_repo.get(conn, state.endpoint)
        if endpoint is None:
            return
        ref = ModelRef.parse(endpoint.model)
        winner = ModelRef.parse(state.candidate)
        if ref.alias is not None and ref.name == winner.name:
            mid = registry_repo.model_id(conn, winner.name)
            if mid is not None and winner.version is not None:
                registry_repo.set_alias(conn, mid, ref.alias, winner.version, now)
                return
        endpoint_repo.update(conn, state.endpoint, model=state.candidate, strict=endpoint.strict, now=now)


def _audit(conn: Any, actor: Actor, transition: Transition, previous: RolloutState | None, now: datetime) -> None:
    """One audit event per change of the rollout (a gate holding changes nothing, so it is not one)."""
    state = transition.state
    before = {"status": previous.status.value, "weight": previous.weight} if previous is not None else None
    for event in transition.events:
        if event.kind is EventKind.HELD:
            continue
        after = {
            "rollout_id": state.id,
            "strategy": state.spec.strategy.value,
            "stable": state.stable,
            "candidate": state.candidate,
            "status": state.status.value,
            "weight": event.weight,
            "message": event.message,
        }
        record(
            conn,
            actor,
            f"rollout.{event.kind.value}",
            endpoint_target(state.endpoint),
            before=before,
            after=after,
            at=now,
        )


def _webhook_payloads(state: RolloutState, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a webhook receiver gets for each event: the rollout as it stands after the change, and the event."""
    return [
        {
            "rollout_id": state.id,
            "endpoint": state.endpoint,
            "stable": state.stable,
            "candidate": state.candidate,
            "status": state.status.value,
            "weight": state.weight,
            "event": e["kind"],
            "message": e["message"],
            "at": e["at"].isoformat(),
            "evidence": e["evidence"],
        }
        for e in events
    ]
