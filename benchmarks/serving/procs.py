"""Server processes: start in their own process group, stop by that group, and sample the tree's RSS."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the fields after its closing one are fixed.
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(root: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """``root`` and every live descendant of it (``children``: one scan of /proc shared by many roots)."""
    if children is None:
        children = _children()
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    return children


def rss_kb(pid: int) -> int:
    """Resident set size of one process in KiB, 0 once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class TreeRss:
    """Peaks of one process tree's RSS: whole tree, largest process, and since the window opened."""

    root: int
    peak_total_kb: int = 0
    peak_process_kb: int = 0
    max_processes: int = 0
    window_peak_kb: int = 0


class RssSampler:
    """Every ``interval_s``, the summed RSS of each tracked process tree, from one scan of /proc.

    Summing RSS over forked workers counts their shared pages once per process, so a multi-process
    server's total is an upper bound; the largest single process is kept alongside.
    """

    def __init__(self, *, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.trees: dict[str, TreeRss] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def track(self, name: str, root: int) -> TreeRss:
        with self._lock:
            self.trees[name] = TreeRss(root)
        return self.trees[name]

    def forget(self, name: str) -> None:
        """Stop sampling ``name`` (its figures stay in the returned TreeRss)."""
        with self._lock:
            self.trees.pop(name, None)

    def open_window(self, name: str) -> None:
        with self._lock:
            self.trees[name].window_peak_kb = 0

    def close_window(self, name: str) -> float:
        """The peak total RSS in MB since ``open_window``, sampling once more first."""
        self.sample()
        with self._lock:
            return self.trees[name].window_peak_kb / 1024

    def sample(self) -> None:
        children = _children()
        with self._lock:
            for tree in self.trees.values():
                sizes = [s for s in (rss_kb(pid) for pid in process_tree(tree.root, children)) if s]
                total = sum(sizes)
                tree.peak_total_kb = max(tree.peak_total_kb, total)
                tree.peak_process_kb = max([tree.peak_process_kb, *sizes])
                tree.max_processes = max(tree.max_processes, len(sizes))
                tree.window_peak_kb = max(tree.window_peak_kb, total)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)


class ServerProcess:
    """A server started in its own session, so that stopping it stops every process it spawned."""

    def __init__(self, command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            list(command), env=dict(env), cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, *, grace_s: float = 15.0) -> None:
        """SIGTERM the group and any descendant that left it, SIGKILL whatever is left after ``grace_s``."""
        tree = process_tree(self.pid) if self.alive() else []
        self._signal(tree, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (self.alive() or any(rss_kb(p) for p in tree)):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.1)
        self._signal([p for p in tree if rss_kb(p)], signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.close()

    def _signal(self, tree: list[int], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def cpu_seconds(root: int) -> float:
    """User plus system CPU time of ``root`` and its live descendants so far (from /proc, in seconds).

    On a shared machine, CPU time per request is steadier than requests per second: a stall or a noisy
    neighbour lengthens wall time, not the CPU a request costs.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in process_tree(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total
