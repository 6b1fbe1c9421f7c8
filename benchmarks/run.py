"""``make bench``: run every benchmark once, print a Markdown table, keep the raw figures as JSON."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_registry

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    print(f"# Shipyard benchmarks — {platform.processor() or platform.machine()}, Python {platform.python_version()}\n")
    results = {"registry": bench_registry.run()}
    print(bench_registry.report(results["registry"]))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nraw figures: {out}")


if __name__ == "__main__":
    main()
