"""Webhooks: rollout events POSTed as JSON to configured URLs, off the caller's thread, with retries.

``notify`` only puts events on a bounded queue, so a slow or dead receiver never delays a rollout move (or
a request); one daemon thread delivers them in order. When the queue is full the newest events are
dropped and counted rather than blocking. Deliveries may repeat after a retry, so every event carries a
delivery id (``X-Shipyard-Delivery``) a receiver can deduplicate on.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from shipyard.errors import InvalidArgumentError

log = logging.getLogger("shipyard.webhooks")

# Worth another try: the receiver is overloaded, rate-limiting, or timed out on its side. Other 4xx mean
# the request itself is wrong, and repeating it would not help.
RETRY_STATUSES = frozenset({408, 429})


def check_webhook_url(url: str) -> str:
    """A webhook URL must be absolute http(s) with a host; anything else is refused before any event is sent."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidArgumentError(f"webhook URL {url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidArgumentError(f"webhook URL {url!r} must start with http:// or https:// and name a host")
    return url


class WebhookNotifier:
    """A ``Notifier`` that POSTs each event to every URL; never blocks or raises in ``notify``."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout_s: float = 5.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        queue_size: int = 1000,
    ) -> None:
        if isinstance(urls, str):
            urls = [urls]
        if not urls:
            raise InvalidArgumentError("WebhookNotifier needs at least one URL")
        if timeout_s <= 0 or retries < 0 or backoff_s < 0 or queue_size < 1:
            raise InvalidArgumentError(
                f"webhook options out of range: timeout_s={timeout_s!r} (> 0), retries={retries!r} (>= 0), "
                f"backoff_s={backoff_s!r} (>= 0), queue_size={queue_size!r} (>= 1)"
            )
        self.urls = tuple(check_webhook_url(u) for u in urls)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.queue_size = queue_size
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._draining = threading.Event()
        self._abandon = threading.Event()
        self.delivered = 0
        """Deliveries (event x URL) the receiver accepted with a 2xx or 3xx."""
        self.failed = 0
        """Deliveries given up: a 4xx, or retries exhausted, or abandoned at close."""
        self.dropped = 0
        """Events never queued: the queue was full, or the notifier was closed."""

    def notify(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Queue events for delivery and return at once; a full queue drops (and counts) what does not fit."""
        try:
            for event in events:
                self._enqueue(dict(event))
        except Exception:  # the Notifier contract: a webhook problem never fails the rollout move
            log.exception("could not queue %d webhook event(s)", len(events))

    def _enqueue(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                self.dropped += 1
                log.warning("webhook notifier is closed; dropped event %r", event.get("event"))
                return
            self._start_worker()
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                self.dropped += 1
                dropped = self.dropped
        log.warning(
            "webhook queue is full (%d events); dropped event %r (%d dropped so far)",
            self.queue_size,
            event.get("event"),
            dropped,
        )

    def _start_worker(self) -> None:
        """Started on the first event, so a process that never sends one never runs a thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shipyard-webhooks", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking events and deliver what is queued for up to ``timeout_s``; the rest is given up."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._draining.set()
        if thread is None:
            return
        thread.join(timeout_s)
        if thread.is_alive():
            self._abandon.set()  # stop retrying; what is still queued is counted as failed
            thread.join(min(timeout_s, 1.0))
            log.warning("webhook notifier closed with %d event(s) undelivered", self._queue.qsize())

    # -- the worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            while True:
                try:
                    event = self._queue.get(timeout=0.05)
                except queue.Empty:
                    if self._draining.is_set():
                        return
                    continue
                try:
                    self._deliver(client, event)
                except Exception:  # a bug here must not kill the worker and silently stop all webhooks
                    log.exception("webhook delivery of %r failed unexpectedly", event.get("event"))
                    self._count(failed=len(self.urls))
                finally:
                    self._queue.task_done()

    def _deliver(self, client: httpx.Client, event: dict[str, Any]) -> None:
        body = json.dumps(event, default=str).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "shipyard-webhooks",
            "X-Shipyard-Event": str(event.get("event", "")),
            "X-Shipyard-Delivery": uuid.uuid4().hex,
        }
        for url in self.urls:
            if self._post(client, url, body, headers, event):
                self._count(delivered=1)
            else:
                self._count(failed=1)

    def _post(
        self, client: httpx.Client, url: str, body: bytes, headers: dict[str, str], event: Mapping[str, Any]
    ) -> bool:
        """One event to one URL: retried with exponential backoff on connection errors, 5xx, 408 and 429."""
        what = f"webhook {event.get('event')!r} for rollout {event.get('rollout_id')} to {url}"
        for attempt in range(self.retries + 1):
            if self._abandon.is_set():
                log.warning("%s abandoned at shutdown", what)
                return False
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 400:
                    return True
                if status < 500 and status not in RETRY_STATUSES:
                    log.error("%s refused with HTTP %d; not retried: %s", what, status, response.text[:200])
                    return False
                problem = f"HTTP {status}"
            if attempt == self.retries:
                log.error("%s failed after %d attempts: %s", what, attempt + 1, problem)
                return False
            delay_s = self.backoff_s * 2**attempt
            log.warning("%s failed (%s); retrying in %.1fs", what, problem, delay_s)
            self._abandon.wait(delay_s)
        return False

    def _count(self, *, delivered: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.delivered += delivered
            self.failed += failed

    def pending(self) -> int:
        """Events queued and not yet taken by the worker (for tests and diagnostics)."""
        return self._queue.qsize()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until every queued event has been attempted; True when that happened within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False
