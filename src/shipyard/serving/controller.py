"""The rollout controller loop: in every server process, but only the lease holder drives rollouts.

The lease holder also delivers webhooks from the store's outbox (to this server's ``SHIPYARD_WEBHOOK_URLS``)
and prunes old outbox events, so every event is sent by one process, whichever process made the change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from shipyard.core.identity import Actor, Principal, Role
from shipyard.errors import ShipyardError
from shipyard.notify.delivery import ChannelDelivery
from shipyard.services.alerts import AlertService
from shipyard.services.rollouts import RolloutService
from shipyard.services.webhooks import WebhookDelivery, prune_outbox

log = logging.getLogger("shipyard.serving")

CONTROLLER_ACTOR = Actor(Principal("controller", "system", frozenset({Role.OPERATOR})))
"""Who the audit trail names for what the controller does on its own (steps, auto-rollbacks, completions)."""

PRUNE_EVERY_S = 3600.0
"""How often the lease holder prunes delivered outbox events older than the retention."""


def webhook_delivery(rollouts: RolloutService, urls: Sequence[str]) -> WebhookDelivery | None:
    """The delivery for a server's configured URLs; None when there are none."""
    if not urls:
        return None
    return WebhookDelivery(rollouts.db, urls, clock=rollouts.clock)


class Controller:
    """Ticks every active rollout while holding the controller lease; another process takes over on expiry."""

    def __init__(
        self,
        rollouts: RolloutService,
        holder: str,
        *,
        lease_s: float = 10.0,
        join_feedback: Callable[[str, datetime], object] | None = None,
        webhooks: WebhookDelivery | None = None,
        channels: ChannelDelivery | None = None,
        alerts: AlertService | None = None,
    ) -> None:
        self.rollouts = rollouts
        self.holder = holder
        self.lease_s = lease_s
        self.join_feedback = join_feedback
        """Fills in the arm of A/B feedback from the prediction log before an A/B analysis reads rewards."""
        self.webhooks = webhooks
        """Sends the outbox to this server's receivers, only while this process holds the lease."""
        self.channels = channels
        """Sends alert events to the notification channels declared in the store, likewise."""
        self.alerts = alerts
        """Evaluates the alert rules over the stored windows, only while this process holds the lease."""
        self._pruned_at: float | None = None
        self.leading = False
        """Whether the last tick held the lease: the job worker runs jobs only then (``jobs.worker``)."""

    def start(self) -> None:
        """Before serving: receivers seen for the first time start at the outbox's current end.

        Done at start, not on the first tick, so an event made by the first request is delivered, not
        skipped as history. A store that is down now is retried by the delivery itself.
        """
        if self.webhooks is None:
            return
        try:
            self.webhooks.register()
        except ShipyardError as exc:
            log.error("could not register webhook receivers: %s", exc)

    def tick_once(self) -> int:
        """One pass; returns how many rollouts changed (0 when another process holds the lease)."""
        asked_at = time.monotonic()
        self.leading = self.rollouts.hold_controller_lease(self.holder, ttl_s=self.lease_s)
        if not self.leading:
            if self.webhooks is not None:
                self.webhooks.release()
            if self.channels is not None:
                self.channels.release()
            return 0
        if self.webhooks is not None:  # until the lease would expire, counted from before it was renewed
            self.webhooks.hold(self.lease_s - (time.monotonic() - asked_at))
        if self.channels is not None:
            try:
                self.channels.hold(self.lease_s - (time.monotonic() - asked_at))
            except ShipyardError as exc:
                log.error("could not read the notification channels: %s", exc)
        self._prune()
        self._evaluate_alerts()
        changed = 0
        for state in self.rollouts.active_states().values():
            try:
                if self.join_feedback is not None and state.spec.strategy.value == "ab":
                    self.join_feedback(state.endpoint, state.started_at)
                changed += self.rollouts.tick(state, actor=CONTROLLER_ACTOR).changed
            except ShipyardError as exc:
                log.error("rollout %s on %s: %s", state.id, state.endpoint, exc)
        return changed

    def _evaluate_alerts(self) -> None:
        """Before the rollouts move, so a rollback an alert asks for lands in this same tick."""
        if self.alerts is None:
            return
        try:
            self.alerts.evaluate(actor=CONTROLLER_ACTOR)
        except ShipyardError as exc:
            log.error("alert evaluation failed: %s", exc)

    def _prune(self) -> None:
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        keys = self.webhooks.keys if self.webhooks is not None else ()
        keys += self.channels.keys if self.channels is not None else ()
        try:
            pruned = prune_outbox(self.rollouts.db, now=self.rollouts.clock(), receivers=keys)
        except ShipyardError as exc:
            log.error("pruning the webhook outbox failed: %s", exc)
        else:
            if pruned:
                log.info("pruned %d delivered webhook event(s) from the outbox", pruned)

    def close(self) -> None:
        """A clean shutdown: stop delivering and hand the lease over now rather than at its expiry."""
        if self.webhooks is not None:  # a POST cut short here is sent again by the next lease holder
            self.webhooks.close(timeout_s=1.0)
        if self.channels is not None:
            self.channels.close(timeout_s=1.0)
        try:
            self.rollouts.release_controller_lease(self.holder)
        except ShipyardError as exc:
            log.warning("could not release the controller lease: %s", exc)

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick_once)
            except Exception:  # keep driving rollouts after an unexpected failure
                log.exception("rollout controller tick failed")
            await asyncio.sleep(interval_s)
