"""Registry speed: load(ref).predict overhead on one row, and the artifact hash check on a 50 MB model.

Ratios are measured in one run, interleaving the two sides so machine noise hits both alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.artifacts.base import verify
from shipyard.config import Settings
from shipyard.workspace import Workspace


def _per_call_us(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def _interleaved(
    a: Callable[[], Any], b: Callable[[], Any], *, calls: int = 2000, rounds: int = 15
) -> tuple[float, float]:
    for _ in range(200):
        a()
        b()
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(_per_call_us(a, calls))
        times_b.append(_per_call_us(b, calls))
    return statistics.median(times_a), statistics.median(times_b)


def bench_predict_overhead(workspace: Workspace) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 20))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = LogisticRegression(max_iter=500).fit(x, y)
    workspace.registry.register(model, name="bench-lr", sample_input=x[:100])
    loaded = workspace.registry.load("bench-lr")
    row = x[:1]
    row_dict = [{f"f{i}": float(v) for i, v in enumerate(row[0])}]
    assert np.array_equal(loaded.predict(row), model.predict(row))
    direct, ours = _interleaved(lambda: model.predict(row), lambda: loaded.predict(row))
    direct2, ours_dict = _interleaved(lambda: model.predict(row), lambda: loaded.predict(row_dict))
    return {
        "direct_us": direct,
        "shipyard_us": ours,
        "ratio": ours / direct,
        "shipyard_dict_row_us": ours_dict,
        "ratio_dict_row": ours_dict / direct2,
    }


def bench_large_artifact(workspace: Workspace, megabytes: int = 50) -> dict[str, Any]:
    from sklearn.neighbors import KNeighborsClassifier

    rows = megabytes * 2**20 // (8 * 11)  # ten float64 features plus an int64 label per row
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, 10))
    y = (x[:, 0] > 0).astype(int)
    model = KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(x, y)
    start = time.perf_counter()
    version = workspace.registry.register(model, name="bench-big", sample_input=x[:50])
    register_s = time.perf_counter() - start
    start = time.perf_counter()
    workspace.registry.load(version.ref)
    load_s = time.perf_counter() - start
    data = workspace.registry.read_artifact(version)
    size_mb = len(data) / 1e6
    hash_times = []
    for _ in range(5):
        start = time.perf_counter()
        verify(data, version.sha256, label=version.ref, location="memory")
        hash_times.append(time.perf_counter() - start)
    read_times = []
    for _ in range(5):
        start = time.perf_counter()
        workspace.artifacts.get(version.sha256, label=version.ref)
        read_times.append(time.perf_counter() - start)
    return {
        "artifact_mb": size_mb,
        "register_s": register_s,
        "load_s": load_s,
        "hash_check_mb_s": size_mb / statistics.median(hash_times),
        "read_and_verify_mb_s": size_mb / statistics.median(read_times),
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        workspace = Workspace(Settings(home=Path(home)))
        try:
            return {"predict": bench_predict_overhead(workspace), "artifact": bench_large_artifact(workspace)}
        finally:
            workspace.close()


def report(results: dict[str, Any]) -> str:
    p, a = results["predict"], results["artifact"]
    lines = [
        "## Registry",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| LogisticRegression(20 features).predict, one NumPy row, direct | {p['direct_us']:.1f} µs | |",
        f"| shipyard.load(ref).predict, same row | {p['shipyard_us']:.1f} µs | |",
        f"| ratio shipyard / direct | **{p['ratio']:.3f}x** | ≤ 1.3x |",
        f"| shipyard predict, one row as a dict | {p['shipyard_dict_row_us']:.1f} µs ({p['ratio_dict_row']:.2f}x) | |",
        f"| artifact size | {a['artifact_mb']:.1f} MB | ~50 MB |",
        f"| sha256 check on load | **{a['hash_check_mb_s']:.0f} MB/s** | ≥ 500 MB/s |",
        f"| read from disk + check | {a['read_and_verify_mb_s']:.0f} MB/s | |",
        f"| register (save, verify, profile, store) | {a['register_s']:.2f} s | |",
        f"| load (read, verify, deserialize) | {a['load_s']:.2f} s | |",
    ]
    return "\n".join(lines)
