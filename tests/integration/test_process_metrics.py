"""Every serving worker exports its own CPU seconds, resident memory and open files, labelled by pid.

A real ``shipyard serve`` process, with one worker and with two (multiprocess metrics). The figures are
compared with what psutil reads from /proc for the same pids, within tolerances stated below: the server
samples its figures on every poll (0.3 s here) and on each scrape, while psutil reads them a moment later.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.test_cli import run
from tests.integration.test_serving_cli import cli_store, server_process
from tests.serving_support import free_port, wait_ready

SERIES = ("shipyard_process_cpu_seconds", "shipyard_process_resident_memory_bytes", "shipyard_process_open_fds")
SAMPLE = re.compile(r'^(shipyard_process_\w+)\{pid="(\d+)"\} (\S+)$')
CPU_TOLERANCE_S = 1.0  # CPU used between the server's sample and psutil's read (idle workers use far less)
RSS_TOLERANCE = 0.10  # resident memory moves a little between the two reads (allocator, a scrape's buffers)
FDS_TOLERANCE = 4  # a scrape's own connection, the database pool, the shadow queue's pipes


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The serving CLI tests' store (iris:1 and iris:2 registered from files), with endpoint iris on iris:1."""
    home = cli_store(tmp_path)
    run(["endpoints", "create", "iris", "--model", "iris:1"], home)
    return home


def process_series(url: str) -> dict[int, dict[str, float]]:
    """The per-worker figures in one scrape: {pid: {series: value}}."""
    out: dict[int, dict[str, float]] = {}
    with httpx.Client(timeout=10) as client:  # a fresh connection, so any worker may answer
        text = client.get(f"{url}/metrics").text
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match.group(1) in SERIES:
            out.setdefault(int(match.group(2)), {})[match.group(1)] = float(match.group(3))
    return out


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s}s")


def assert_matches_proc(pid: int, figures: dict[str, float]) -> None:
    """The exported figures are this pid's own, as /proc reads them now (psutil, read after the scrape)."""
    process = psutil.Process(pid)
    cpu = process.cpu_times()
    used_s = cpu.user + cpu.system
    rss = process.memory_info().rss
    fds = process.num_fds()
    assert set(figures) == set(SERIES), figures
    assert -0.05 <= used_s - figures["shipyard_process_cpu_seconds"] <= CPU_TOLERANCE_S, (used_s, figures)
    assert figures["shipyard_process_cpu_seconds"] > 0
    assert abs(figures["shipyard_process_resident_memory_bytes"] - rss) <= RSS_TOLERANCE * rss, (rss, figures)
    assert abs(figures["shipyard_process_open_fds"] - fds) <= FDS_TOLERANCE, (fds, figures)


def test_one_worker_exports_its_own_cpu_memory_and_open_files(home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server_process(["serve", "--port", str(port)], home) as server:
        wait_ready(url)
        series = process_series(url)
        assert list(series) == [server.pid]  # the CLI execs the server: one process, the one started
        assert_matches_proc(server.pid, series[server.pid])


def test_two_workers_export_their_figures_by_pid_and_a_killed_workers_series_go_away(home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server_process(["serve", "--port", str(port), "--workers", "2"], home) as server:
        wait_ready(url)
        workers = {child.pid for child in psutil.Process(server.pid).children()}
        seen: dict[int, dict[str, float]] = {}

        def both_workers_seen() -> bool:
            seen.update(process_series(url))
            return len(set(seen) & workers) == 2

        wait_for(both_workers_seen)  # each scrape shows every worker's series; wait until both have sampled
        series = process_series(url)
        assert set(series) <= workers and len(series) == 2, (series, workers)
        for pid, figures in series.items():
            assert_matches_proc(pid, figures)

        killed = min(series)
        os.kill(killed, signal.SIGKILL)  # uvicorn starts a replacement; the dead worker's series must not linger
        wait_for(lambda: killed not in process_series(url) and len(process_series(url)) == 2)
        replacement = set(process_series(url)) - set(series)
        assert len(replacement) == 1 and replacement <= {c.pid for c in psutil.Process(server.pid).children()}
