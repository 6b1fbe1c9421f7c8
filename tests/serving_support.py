"""A real uvicorn server on 127.0.0.1 for tests, started in a thread and stopped afterwards."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from shipyard.config import Settings
from shipyard.serving.app import create_app
from shipyard.serving.server import http_protocol
from shipyard.workspace import Workspace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server at {url} not ready within {timeout_s}s")


class ServerUrl(str):
    """The base URL, carrying the running app for tests that look inside it."""

    app: FastAPI


@contextmanager
def running_server(settings: Settings, workspace: Workspace, *, ready: bool = True) -> Iterator[ServerUrl]:
    """Serve ``workspace`` on a free port until the block ends; yields the base URL."""
    port = free_port()
    app = create_app(settings, workspace=workspace)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="asyncio",
        lifespan="on",
        http=http_protocol(settings),  # the header-limited httptools protocol `shipyard serve` runs
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = ServerUrl(f"http://127.0.0.1:{port}")
    url.app = app
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if ready:
            wait_ready(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
