"""``make bench``: run every benchmark once, print a Markdown table, keep the raw figures as JSON.

Switches for quick checks: ``SHIPYARD_BENCH_QUICK=1`` (short load runs), ``SHIPYARD_BENCH_PEERS=0``
(skip MLflow and BentoML, and so their installation), ``SHIPYARD_BENCH_ONLY=serving`` (or ``registry``,
``cli``, ``coldstart``, ``rollouts``, ``monitoring``, ``drift``, ``cbpe``, ``dle``, ``auth``, ``alerts``;
comma-separated).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_alerts
import bench_auth
import bench_cbpe
import bench_cli
import bench_coldstart
import bench_dle
import bench_drift
import bench_monitoring
import bench_registry
import bench_rollouts
import bench_serving

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    quick = os.environ.get("SHIPYARD_BENCH_QUICK", "0") not in ("", "0")
    peers = os.environ.get("SHIPYARD_BENCH_PEERS", "1") != "0"
    only = {name.strip() for name in os.environ.get("SHIPYARD_BENCH_ONLY", "").split(",") if name.strip()}
    print(f"# Shipyard benchmarks — {platform.processor() or platform.machine()}, Python {platform.python_version()}\n")
    results = {}
    if not only or "registry" in only:
        results["registry"] = bench_registry.run()
        print(bench_registry.report(results["registry"]), flush=True)
    if not only or "cli" in only:
        results["cli"] = bench_cli.run(quick=quick)
        print("\n" + bench_cli.report(results["cli"]), flush=True)
    if not only or "coldstart" in only:
        results["coldstart"] = bench_coldstart.run(quick=quick)
        print("\n" + bench_coldstart.report(results["coldstart"]), flush=True)
    if not only or "serving" in only:
        results["serving"] = bench_serving.run(quick=quick, peers=peers)
        print("\n" + bench_serving.report(results["serving"]))
    if not only or "rollouts" in only:
        results["rollouts"] = bench_rollouts.run(quick=quick)
        print("\n" + bench_rollouts.report(results["rollouts"]))
    if not only or "monitoring" in only:
        results["monitoring"] = bench_monitoring.run(quick=quick)
        print("\n" + bench_monitoring.report(results["monitoring"]))
    if not only or "drift" in only:
        results["drift"] = bench_drift.run(quick=quick, peers=peers)
        print("\n" + bench_drift.report(results["drift"]))
    if not only or "cbpe" in only:
        results["cbpe"] = bench_cbpe.run(quick=quick, peers=peers)
        print("\n" + bench_cbpe.report(results["cbpe"]))
    if not only or "dle" in only:
        results["dle"] = bench_dle.run(quick=quick)
        print("\n" + bench_dle.report(results["dle"]))
    if not only or "auth" in only:
        results["auth"] = bench_auth.run(quick=quick)
        print("\n" + bench_auth.report(results["auth"]))
    if not only or "alerts" in only:
        results["alerts"] = bench_alerts.run(quick=quick)
        print("\n" + bench_alerts.report(results["alerts"]))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nraw figures: {out}")


if __name__ == "__main__":
    main()
