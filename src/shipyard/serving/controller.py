"""The rollout controller loop: in every server process, but only the lease holder drives rollouts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from shipyard.errors import ShipyardError
from shipyard.services.rollouts import RolloutService

log = logging.getLogger("shipyard.serving")


class Controller:
    """Ticks every active rollout while holding the controller lease; another process takes over on expiry."""

    def __init__(
        self,
        rollouts: RolloutService,
        holder: str,
        *,
        lease_s: float = 10.0,
        join_feedback: Callable[[str, datetime], object] | None = None,
    ) -> None:
        self.rollouts = rollouts
        self.holder = holder
        self.lease_s = lease_s
        self.join_feedback = join_feedback
        """Fills in the arm of A/B feedback from the prediction log before an A/B analysis reads rewards."""

    def tick_once(self) -> int:
        """One pass; returns how many rollouts changed (0 when another process holds the lease)."""
        if not self.rollouts.hold_controller_lease(self.holder, ttl_s=self.lease_s):
            return 0
        changed = 0
        for state in self.rollouts.active_states().values():
            try:
                if self.join_feedback is not None and state.spec.strategy.value == "ab":
                    self.join_feedback(state.endpoint, state.started_at)
                changed += self.rollouts.tick(state).changed
            except ShipyardError as exc:
                log.error("rollout %s on %s: %s", state.id, state.endpoint, exc)
        return changed

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick_once)
            except Exception:  # keep driving rollouts after an unexpected failure
                log.exception("rollout controller tick failed")
            await asyncio.sleep(interval_s)
