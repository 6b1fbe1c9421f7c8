"""Load from ``wrk`` on 127.0.0.1: POST one body at a fixed concurrency, read back one JSON line of figures."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).resolve().parent / "post.lua"


def ensure_wrk() -> str:
    """The ``wrk`` executable, installing the Debian package first when it is not on PATH."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError("the serving benchmark needs wrk: install it (Debian/Ubuntu: sudo apt-get install -y wrk)")
    print("installing wrk (apt-get install -y wrk) ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk, but it is still not on PATH")
    return found


def run_wrk(
    wrk: str,
    url: str,
    body_file: Path,
    *,
    connections: int,
    duration_s: float,
    threads: int = 1,
    timeout_s: float = 30.0,
    script: Path = LUA_SCRIPT,
    script_args: Sequence[str] = (),
) -> dict[str, Any]:
    """One wrk run; requests/s counts 2xx answers only, errors are non-2xx answers plus socket errors.

    The request timeout is long so that a slow server's latencies are measured, not dropped as timeouts.
    ``script`` replaces post.lua (it must print the same figures line), given ``body_file`` and ``script_args``.
    """
    command = [
        wrk,
        "--latency",
        "-t",
        str(min(threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{duration_s:g}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        str(script),
        url,
        "--",
        str(body_file),
        *script_args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + timeout_s + 60)
    figures = next((line for line in done.stdout.splitlines() if line.startswith('{"bench_wrk"')), None)
    if done.returncode != 0 or figures is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")
    raw = json.loads(figures)
    seconds = raw["duration_us"] / 1e6
    socket_errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    errors = raw["status_errors"] + socket_errors
    return {
        "concurrency": connections,
        "duration_s": seconds,
        "requests": raw["requests"],
        "rps": (raw["requests"] - raw["status_errors"]) / seconds,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "status_errors": raw["status_errors"],
        "socket_errors": socket_errors,
    }


def metric_total(base: str, metric: str, *, label: str = "") -> float | None:
    """The sum of a Prometheus counter's samples in ``base``/metrics whose labels contain ``label``
    (e.g. ``endpoint="shadow"``); None when the server cannot be reached."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(metric + "{") and label in line
    )


def median_figures(
    runs: list[dict[str, Any]], *, by: str, names: Sequence[str], concurrency: Sequence[int]
) -> dict[str, dict[str, Any]]:
    """Per ``runs[by]`` name and concurrency: median req/s, p50, p99 and server CPU per request, total errors."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        for c in concurrency:
            cells = [r for r in runs if r[by] == name and r["concurrency"] == c]
            if cells:
                out.setdefault(name, {})[str(c)] = {
                    "rps": statistics.median(r["rps"] for r in cells),
                    "p50_ms": statistics.median(r["p50_ms"] for r in cells),
                    "p99_ms": statistics.median(r["p99_ms"] for r in cells),
                    "cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in cells),
                    "errors": sum(r["errors"] for r in cells),
                }
    return out
