"""Webhooks: events from the store's outbox POSTed as JSON to each configured receiver, by the lease holder.

Whichever process makes a change (a server, a shell running ``shipyard rollout abort``), its events are
written to the outbox in the same transaction (``store.outbox``). Only the process holding the rollout
controller lease delivers them, to the receivers in its own ``SHIPYARD_WEBHOOK_URLS``:

- each receiver has its own thread and its own cursor in the store, so a dead or slow receiver delays only
  itself, and a new lease holder carries on where the last one stopped;
- events go out in id order, each once: the cursor moves past an event in the store right after the
  receiver accepted it. The one case of a repeat is a crash (or a lost lease) between the receiver's answer
  and that commit; the event then comes again with the same ``X-Shipyard-Delivery`` id (the outbox id),
  which a receiver can de-duplicate on;
- a failure (connection error, timeout, 5xx, 408, 425, 429) is retried with exponential backoff, capped;
  another 4xx, or ``max_attempts`` failures, gives the event up (counted, logged) so one bad event cannot
  block a receiver forever;
- a receiver seen for the first time starts at the current end of the outbox, not with its history.

URLs often carry credentials (``https://user:pass@host/hook?token=…``): the store keys receivers by a
hash of the URL, and logs show it masked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from shipyard.errors import InvalidArgumentError
from shipyard.store import outbox
from shipyard.store.db import Database

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("shipyard.webhooks")

# Worth another try: the receiver is overloaded, rate-limiting, or timed out on its side. Other 4xx mean
# the request itself is wrong, and repeating it would not help.
RETRY_STATUSES = frozenset({408, 425, 429})
OUTBOX_RETENTION_S = 7 * 86_400.0
"""Events older than this, that every live receiver is past, are pruned by the lease holder."""


def mask_url(url: str) -> str:
    """The URL as logs may show it: password, a bare user token and query values hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable webhook URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"
    query = "&".join(
        f"{pair.partition('=')[0]}=***" if "=" in pair else "***" for pair in parts.query.split("&") if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, "***" if parts.fragment else ""))


def receiver_key(url: str) -> str:
    """How the store names a receiver: a hash of its URL, so no credential is ever stored."""
    return hashlib.sha256(url.encode()).hexdigest()


def check_webhook_url(url: str) -> str:
    """A webhook URL must be absolute http(s) with a host; anything else is refused before any event is sent."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidArgumentError(f"webhook URL {mask_url(url)!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(f"webhook URL {mask_url(url)!r} must start with http:// or https:// and name a host")
    return url


@dataclass
class _Receiver:
    """One configured URL and what its worker thread needs."""

    url: str
    key: str
    shown: str
    secrets: tuple[str, ...]
    wake: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def of(cls, url: str) -> _Receiver:
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        secrets = tuple(s for s in (url, userinfo, parts.query, parts.fragment) if s)
        return cls(url, receiver_key(url), mask_url(url), secrets)

    def scrub(self, text: str) -> str:
        """``text`` (an error message) with any part of the URL that may hold a credential masked."""
        for secret in self.secrets:
            text = text.replace(secret, self.shown if secret == self.url else "***")
        return text


@dataclass(frozen=True, slots=True)
class ReceiverStatus:
    """A receiver's progress as the store has it, named by its masked URL."""

    url: str
    last_id: int
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered: int
    failed: int


class WebhookDelivery:
    """Delivers the outbox to each receiver while ``hold`` says this process holds the controller lease."""

    def __init__(
        self,
        db: Database,
        urls: Sequence[str],
        *,
        clock: Callable[[], datetime] | None = None,
        timeout_s: float = 5.0,
        max_attempts: int = 10,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        poll_s: float = 1.0,
        batch: int = 100,
    ) -> None:
        if isinstance(urls, str):
            urls = [urls]
        if not urls:
            raise InvalidArgumentError("WebhookDelivery needs at least one URL")
        if timeout_s <= 0 or max_attempts < 1 or backoff_s < 0 or max_backoff_s < backoff_s or poll_s <= 0:
            raise InvalidArgumentError(
                f"webhook options out of range: timeout_s={timeout_s!r} (> 0), max_attempts={max_attempts!r} "
                f"(>= 1), backoff_s={backoff_s!r} (>= 0), max_backoff_s={max_backoff_s!r} (>= backoff_s), "
                f"poll_s={poll_s!r} (> 0)"
            )
        self.db = db
        self.receivers = tuple(_Receiver.of(check_webhook_url(u)) for u in dict.fromkeys(urls))
        self.clock = clock or (lambda: datetime.now(UTC))
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_s = poll_s
        self.batch = batch
        self._lock = threading.Lock()
        self._held_until = 0.0  # time.monotonic() until which this process may deliver
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def keys(self) -> tuple[str, ...]:
        """The receivers as the store names them (hashes of their URLs)."""
        return tuple(r.key for r in self.receivers)

    def register(self) -> None:
        """Give receivers seen for the first time a cursor at the end of the outbox (any process may do it).

        A server does this when it starts, before it serves a request, so an event made right after start
        is not mistaken for history; the workers do it again in case the store was down then.
        """
        with self.db.write() as conn:
            outbox.register(conn, self.keys, self.clock())

    def hold(self, ttl_s: float) -> None:
        """The controller lease is held for ``ttl_s`` more seconds: deliver until then, starting now."""
        with self._lock:
            if self._stop.is_set():
                return
            self._held_until = time.monotonic() + ttl_s
            if not self._threads:
                for receiver in self.receivers:
                    thread = threading.Thread(
                        target=self._run, args=(receiver,), name=f"shipyard-webhook-{receiver.key[:8]}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
        for receiver in self.receivers:
            receiver.wake.set()

    def release(self) -> None:
        """The lease is gone: stop after the event in flight."""
        self._held_until = 0.0

    def holding(self) -> bool:
        """Whether this process may deliver now: the lease is held and the delivery is not closed."""
        return not self._stop.is_set() and time.monotonic() < self._held_until

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop delivering; a POST in flight gets until ``timeout_s`` to finish (its event is sent again later)."""
        self._stop.set()
        self.release()
        for receiver in self.receivers:
            receiver.wake.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def status(self) -> list[ReceiverStatus]:
        """Every configured receiver's progress from the store (a receiver not registered yet is left out)."""
        found = []
        with self.db.read() as conn:
            for receiver in self.receivers:
                s = outbox.state(conn, receiver.key)
                if s is not None:
                    found.append(
                        ReceiverStatus(
                            receiver.shown,
                            s.last_id,
                            s.attempts,
                            s.next_attempt_at,
                            s.last_error,
                            s.delivered,
                            s.failed,
                        )
                    )
        return found

    # -- one worker per receiver -------------------------------------------------------------------

    def _run(self, receiver: _Receiver) -> None:
        import httpx

        registered = False
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            while not self._stop.is_set():
                receiver.wake.clear()
                wait_s = self.poll_s
                if self.holding():
                    try:
                        if not registered:
                            self.register()
                            registered = True
                        wait_s = self._pass(client, receiver)
                    except Exception:  # the store is down, or a bug: keep the worker alive and try again
                        log.exception("webhook delivery to %s failed; trying again", receiver.shown)
                if wait_s > 0:
                    receiver.wake.wait(wait_s)

    def _pass(self, client: httpx.Client, receiver: _Receiver) -> float:
        """Deliver what is due to one receiver; returns how long to wait before the next pass."""
        with self.db.read() as conn:
            state = outbox.state(conn, receiver.key)
            if state is None:
                raise RuntimeError(f"webhook receiver {receiver.shown} has no cursor in the store")
            due = state.next_attempt_at
            now = self.clock()
            if due is not None and due > now:
                return min((due - now).total_seconds(), self.poll_s)
            events = outbox.after(conn, state.last_id, limit=self.batch)
        if not events:
            return self.poll_s
        cursor, attempts = state.last_id, state.attempts
        for event in events:
            if not self.holding():
                return self.poll_s
            problem, retry = self._post(client, receiver, event)
            now = self.clock()
            if problem is None or not retry or attempts + 1 >= self.max_attempts:
                if problem is not None:
                    tries = attempts + 1
                    what = f"webhook {event.event!r} (delivery {event.id}) to {receiver.shown}"
                    log.error("%s given up after %d attempt(s): %s", what, tries, problem)
                with self.db.write() as conn:
                    moved = outbox.advance(conn, receiver.key, from_id=cursor, to_id=event.id, error=problem, now=now)
                if not moved:  # another process moved this cursor (a lease hand-over): read it again
                    return 0.0
                cursor, attempts = event.id, 0
                continue
            attempts += 1
            backoff = outbox.Backoff(self.backoff_s, self.max_backoff_s, self.max_attempts)
            return backoff.retry_later(
                self.db,
                receiver.key,
                at_id=cursor,
                attempts=attempts,
                problem=problem,
                what=f"webhook {event.event!r} (delivery {event.id}) to {receiver.shown}",
                now=now,
                log=log,
            )
        return 0.0 if len(events) == self.batch else self.poll_s

    def _post(self, client: httpx.Client, receiver: _Receiver, event: outbox.OutboxEvent) -> tuple[str | None, bool]:
        """One try: (None, _) when accepted, else (what went wrong, whether another try may help)."""
        import httpx

        headers = {
            "Content-Type": "application/json",
            "User-Agent": "shipyard-webhooks",
            "X-Shipyard-Event": event.event,
            "X-Shipyard-Delivery": str(event.id),
        }
        body = json.dumps(event.payload, default=str).encode()
        try:
            response = client.post(receiver.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return receiver.scrub(f"{type(exc).__name__}: {exc}"), True
        status = response.status_code
        if status < 400:
            return None, False
        problem = f"HTTP {status}: {receiver.scrub(response.text[:200])}" if status < 500 else f"HTTP {status}"
        return problem, status >= 500 or status in RETRY_STATUSES


def prune_outbox(
    db: Database, *, now: datetime, receivers: Sequence[str] = (), retention_s: float = OUTBOX_RETENTION_S
) -> int:
    """Delete events older than ``retention_s`` that every live receiver is past (``receivers``: this server's
    keys, beside any receiver another server touched within the retention); the newest event is kept."""
    with db.write() as conn:
        return outbox.prune(conn, before=now - timedelta(seconds=retention_s), receivers=receivers)
