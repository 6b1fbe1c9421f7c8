"""Real notification targets on 127.0.0.1 for tests: an SMTP server (aiosmtpd) and Prometheus Alertmanager.

Alertmanager and promtool come from Debian's packages, which ``make test`` installs; without them a test is
skipped, except in CI, where a missing tool is a failure rather than a silent pass (as ``tests/peers.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving_support import free_port


def debian_tool(*names: str, package: str) -> str:
    """The path of the first of ``names`` on PATH; skipped (failed in CI) when the package is not installed."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    message = f"{names[0]} not found: apt-get install {package} (make test installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Mailbox:
    """What the SMTP server accepted: each message with its envelope recipients."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd names the hook
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout_s: float = 15.0) -> list[tuple[list[str], Message]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} emails within {timeout_s}s, got {len(self.messages)}")


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """An aiosmtpd server on a free port until the block ends."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


ALERTMANAGER_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
"""


@contextmanager
def running_alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 (no cluster, storage in ``tmp_path``); yields its base URL."""
    binary = debian_tool("prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG)
    (tmp_path / "am-data").mkdir()
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"alertmanager did not start: {(tmp_path / 'alertmanager.log').read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
