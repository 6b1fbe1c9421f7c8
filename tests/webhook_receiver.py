"""A real HTTP webhook receiver on 127.0.0.1 for tests: records what arrives, can fail or stall on purpose."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""
    """The body's bytes as they arrived (what a signature is computed over)."""


@dataclass
class Receiver:
    """What the server saw; ``fail_first`` requests get ``fail_status``, and ``gate`` (when set) stalls each one
    until it is opened (or the receiver stops): a receiver that never answers.

    ``arrived`` holds every request as it came in, ``attempts`` those answered, ``accepted`` those answered 204.
    """

    url: str = ""
    fail_first: int = 0
    fail_status: int = 503
    gate: threading.Event | None = None
    arrived: list[Delivery] = field(default_factory=list)
    attempts: list[Delivery] = field(default_factory=list)
    accepted: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [d.body for d in self.accepted]

    def delivery_ids(self) -> list[int]:
        """The ``X-Shipyard-Delivery`` id of each accepted event, in the order they arrived."""
        with self.lock:
            return [int(d.headers["x-shipyard-delivery"]) for d in self.accepted]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The accepted events once at least ``count`` arrived; fails the test after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) >= count:
                return events
            time.sleep(0.01)
        raise AssertionError(f"expected {count} webhook events within {timeout_s}s, got {self.events()}")


@contextmanager
def webhook_receiver(**options: Any) -> Iterator[Receiver]:
    """Serve a ``Receiver`` on a free port until the block ends."""
    receiver = Receiver(**options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            delivery = Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw), raw)
            with receiver.lock:
                receiver.arrived.append(delivery)
            if receiver.gate is not None:
                receiver.gate.wait(120)
            with receiver.lock:
                receiver.attempts.append(delivery)
                failing = len(receiver.attempts) <= receiver.fail_first
                if not failing:
                    receiver.accepted.append(delivery)
            self.send_response(receiver.fail_status if failing else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.gate is not None:
            receiver.gate.set()
        server.shutdown()
        server.server_close()
