"""``shipyard.compare`` (what ``shipyard drift`` runs) on the benchmark's Parquet files, in a fresh process.

Usage: shipyard_compare.py REFERENCE CURRENT [--multivariate]. The whole offline path: both files
streamed in chunks (the reference's bins from its first chunk), drift per feature, summary statistics,
constant columns, exact duplicate rows, correlation changes and, with ``--multivariate``, the domain
classifier on a 2,000-row sample of each side. Prints time, CPU time and peak memory (VmHWM) as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("--multivariate", action="store_true")
    args = parser.parse_args()
    # What the comparison uses is loaded before the clock starts, as a running service has it (SciPy for the
    # p-values, the services and the report records); the other tools' imports are not timed either.
    import scipy.special
    import scipy.stats  # noqa: F401

    import shipyard.reporting.comparison
    import shipyard.services.compare

    if args.multivariate:
        import sklearn.ensemble  # noqa: F401
    imports_mb = peak_rss_mb()
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = shipyard.compare(args.reference, args.current, multivariate=args.multivariate)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_rss_mb": peak_rss_mb(),
                "imports_rss_mb": imports_mb,
                "rows": result.report.current.rows,
                "features": len(result.report.reference.columns),
                "drifted": sorted(result.drift.drifted_features),
                "duplicates": result.quality.duplicates.duplicates if result.quality.duplicates else None,
                "correlation_changes": len(result.quality.correlations.changed)
                if result.quality.correlations
                else None,
                "domain_auc": result.multivariate.auc if result.multivariate is not None else None,
            }
        )
    )


if __name__ == "__main__":
    main()
