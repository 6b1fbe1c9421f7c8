"""The baseline: a bare NumPy PSI over the 20 numeric columns, loaded in memory first; prints JSON.

Usage: numpy_psi.py REFERENCE CURRENT. What a careful engineer writes by hand: reference deciles as bin
edges, ``np.histogram`` of both columns, the PSI formula with empty bins floored at 1e-4 (as Shipyard's).
Loading is timed apart from the PSI, which is the figure Shipyard is held to.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import NUMERIC
from memory import peak_rss_mb


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    edges = np.quantile(reference, np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.maximum(np.histogram(reference, edges)[0] / reference.size, 1e-4)
    actual = np.maximum(np.histogram(current, edges)[0] / current.size, 1e-4)
    return float(((actual - expected) * np.log(actual / expected)).sum())


def main() -> None:
    imports_mb = peak_rss_mb()
    started = time.perf_counter()
    columns = []
    for path in sys.argv[1:3]:
        table = pq.read_table(path, columns=list(NUMERIC))
        columns.append([table.column(name).to_numpy() for name in NUMERIC])
        del table
    loaded = time.perf_counter()
    cpu_started = time.process_time()
    scores = {name: psi(ref, cur) for name, ref, cur in zip(NUMERIC, *columns, strict=True)}
    seconds = time.perf_counter() - loaded
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": time.process_time() - cpu_started,
                "load_seconds": loaded - started,
                "peak_rss_mb": peak_rss_mb(),
                "imports_rss_mb": imports_mb,
                "rows": int(columns[0][0].size),
                "features": len(NUMERIC),
                "drifted": sorted(name for name, score in scores.items() if score > 0.2),
            }
        )
    )


if __name__ == "__main__":
    main()
