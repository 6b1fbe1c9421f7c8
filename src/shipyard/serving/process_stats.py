"""A worker's own CPU time, resident memory and open files, read from the OS without psutil.

prometheus_client's process collector does not work once ``PROMETHEUS_MULTIPROC_DIR`` is set (each
worker's metrics go through files, and the collector only reads the scraping process), so the server
reads these itself and exports them per worker pid (see ``ServingMetrics.sample_process``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """One reading; a figure the OS does not offer (no /proc, e.g. macOS) is None and left unexported."""

    cpu_seconds: float
    resident_bytes: int | None
    open_fds: int | None


def read_process_stats() -> ProcessStats:
    """This process's user + system CPU seconds (all threads), resident set size and open descriptors."""
    times = os.times()
    return ProcessStats(times.user + times.system, _resident_bytes(), _open_fds())


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # less the one listdir itself held open
    except OSError:
        return None
