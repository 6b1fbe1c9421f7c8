"""Peak resident memory of this process: VmHWM, not ``ru_maxrss``.

On Linux, ``getrusage(RUSAGE_SELF).ru_maxrss`` survives fork and exec: a child starts at its parent's peak,
so a benchmark parent holding the generated data would set every child's floor. VmHWM belongs to the
process's own address space, which exec replaces. Standard library only: Evidently's venv imports it too.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # other systems: the best there is
