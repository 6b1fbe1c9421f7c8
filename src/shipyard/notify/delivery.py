"""Alert events from the store's outbox to every notification channel, by the controller lease holder.

The same design as ``services.webhooks`` (a cursor per target in the store, events in id order, each once,
retried with capped exponential backoff, given up after ``max_attempts`` or a permanent refusal), with two
differences: channels are declared in the store at run time, so the set is read again on every tick and a
worker thread is started for a new channel and stops for a removed one; and a channel takes only alert
events (``alert.firing``, ``alert.resolved``) that match its filters, moving its cursor past the rest.

Nothing here runs on the request path: serving never waits on a channel, however slow or dead.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shipyard.alerts.events import FIRING, RESOLVED, AlertEvent
from shipyard.notify.base import Outcome
from shipyard.notify.build import notifier_for
from shipyard.notify.channel import Channel
from shipyard.store import channels as repo
from shipyard.store import outbox
from shipyard.store.db import Database

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("shipyard.notify")

ALERT_EVENTS = frozenset({FIRING, RESOLVED})


def load_channels(db: Database) -> dict[str, Channel]:
    """Every declared channel, by name."""
    with db.read() as conn:
        rows = repo.all_channels(conn)
    return {
        r.name: Channel.from_stored(r.name, r.kind, r.config, created_by=r.created_by, created_at=r.created_at)
        for r in rows
    }


def alert_of(event: outbox.OutboxEvent) -> AlertEvent | None:
    """The alert an outbox event carries; None for other events (rollouts) and payloads that do not read."""
    if event.event not in ALERT_EVENTS:
        return None
    try:
        return AlertEvent.from_dict(event.payload)
    except (KeyError, TypeError, ValueError) as exc:
        log.error("alert event %d does not read as an alert (%s): no channel gets it", event.id, exc)
        return None


@dataclass
class _Worker:
    channel: Channel
    wake: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class ChannelDelivery:
    """Delivers alert events to each declared channel while ``hold`` says this process holds the lease."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] | None = None,
        environ: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
        max_attempts: int = 10,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        poll_s: float = 1.0,
        batch: int = 100,
    ) -> None:
        self.db = db
        self.clock = clock or (lambda: datetime.now(UTC))
        self.environ = environ if environ is not None else os.environ
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_s = poll_s
        self.batch = batch
        self._lock = threading.Lock()
        self._held_until = 0.0
        self._stop = threading.Event()
        self._workers: dict[str, _Worker] = {}

    @property
    def keys(self) -> tuple[str, ...]:
        """The cursors of the channels being delivered to (live receivers, for pruning the outbox)."""
        with self._lock:
            return tuple(w.channel.receiver for w in self._workers.values())

    def hold(self, ttl_s: float) -> None:
        """The lease is held for ``ttl_s`` more seconds: read the channels again and deliver until then."""
        if self._stop.is_set():
            return
        channels = load_channels(self.db)
        with self._lock:
            self._held_until = time.monotonic() + ttl_s
            for name in list(self._workers):
                worker = self._workers[name]
                if channels.get(name) != worker.channel:  # removed or re-declared: that worker stops
                    del self._workers[name]
                    worker.wake.set()
            for name, channel in channels.items():
                if name not in self._workers:
                    worker = _Worker(channel)
                    worker.thread = threading.Thread(
                        target=self._run, args=(worker,), name=f"shipyard-channel-{name}", daemon=True
                    )
                    self._workers[name] = worker
                    worker.thread.start()
            workers = list(self._workers.values())
        for worker in workers:
            worker.wake.set()

    def release(self) -> None:
        """The lease is gone: stop after the event in flight."""
        self._held_until = 0.0

    def _current(self, worker: _Worker) -> bool:
        with self._lock:
            return self._workers.get(worker.channel.name) is worker

    def holding(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._held_until

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop delivering; a send in flight gets until ``timeout_s`` (its event is sent again later)."""
        self._stop.set()
        self.release()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.wake.set()
        deadline = time.monotonic() + timeout_s
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - time.monotonic()))

    # -- one worker per channel ------------------------------------------------------------------------

    def _run(self, worker: _Worker) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            notifier = notifier_for(
                worker.channel, client, environ=self.environ, clock=self.clock, timeout_s=self.timeout_s
            )
            while not self._stop.is_set() and self._current(worker):
                worker.wake.clear()
                wait_s = self.poll_s
                if self.holding():
                    try:
                        wait_s = self._pass(worker, notifier.send)
                    except Exception:  # the store is down, or a bug: keep the worker alive and try again
                        log.exception("delivery to channel %s failed; trying again", worker.channel.name)
                if wait_s > 0:
                    worker.wake.wait(wait_s)

    def _pass(self, worker: _Worker, send: Callable[..., Outcome]) -> float:
        """Deliver what is due to one channel; returns how long to wait before the next pass."""
        channel = worker.channel
        with self.db.read() as conn:
            state = outbox.state(conn, channel.receiver)
            if state is None:  # removed since the last tick
                return self.poll_s
            due, now = state.next_attempt_at, self.clock()
            if due is not None and due > now:
                return min((due - now).total_seconds(), self.poll_s)
            events = outbox.after(conn, state.last_id, limit=self.batch)
        cursor, attempts = state.last_id, state.attempts
        for event in events:
            if not self.holding() or not self._current(worker):
                return self.poll_s
            alert = alert_of(event)
            if alert is None or not channel.wants(alert.severity, alert.endpoint):
                with self.db.write() as conn:
                    if not repo.skip(conn, channel.receiver, from_id=cursor, to_id=event.id, now=self.clock()):
                        return 0.0
                cursor, attempts = event.id, 0
                continue
            outcome = send(alert, delivery_id=event.id)
            now = self.clock()
            what = f"{event.event} {alert.rule!r} (delivery {event.id}) to channel {channel.name}"
            if outcome.ok or not outcome.retry or attempts + 1 >= self.max_attempts:
                if not outcome.ok:
                    log.error("%s given up after %d attempt(s): %s", what, attempts + 1, outcome.problem)
                with self.db.write() as conn:
                    moved = outbox.advance(
                        conn, channel.receiver, from_id=cursor, to_id=event.id, error=outcome.problem, now=now
                    )
                if not moved:  # another process moved this cursor (a lease hand-over): read it again
                    return 0.0
                cursor, attempts = event.id, 0
                continue
            attempts += 1
            backoff = outbox.Backoff(self.backoff_s, self.max_backoff_s, self.max_attempts)
            return backoff.retry_later(
                self.db,
                channel.receiver,
                at_id=cursor,
                attempts=attempts,
                problem=outcome.problem or "",
                what=what,
                now=now,
                log=log,
            )
        return 0.0 if len(events) == self.batch else self.poll_s


def send_once(
    channel: Channel,
    alert: AlertEvent,
    *,
    environ: Mapping[str, str],
    clock: Callable[[], datetime],
    timeout_s: float = 5.0,
    delivery_id: int = 0,
) -> Outcome:
    """One try to one channel now, outside the outbox (``shipyard channels test``)."""
    import httpx

    client: httpx.Client
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        notifier = notifier_for(channel, client, environ=environ, clock=clock, timeout_s=timeout_s)
        return notifier.send(alert, delivery_id=delivery_id)
