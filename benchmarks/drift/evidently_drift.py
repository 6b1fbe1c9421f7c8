"""Evidently's data-drift report on the 20 numeric columns, run by the Python of Evidently's own venv.

Usage: evidently_drift.py REFERENCE CURRENT. Prints JSON: the report's time (data already loaded as
pandas DataFrames, as Evidently takes them), the loading time apart, peak memory, and the columns it
calls drifted. Imports only Evidently, pandas and pyarrow: Shipyard is not installed in that venv.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import peak_rss_mb

NUMERIC = [f"x{i:02d}" for i in range(20)]


def _drifted(snapshot: object) -> list[str]:
    """Columns whose drift score crosses the threshold Evidently chose for them."""
    found = []
    for metric in snapshot.dict()["metrics"]:  # type: ignore[attr-defined]
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        method, threshold, value = str(config.get("method", "")), config.get("threshold"), metric.get("value")
        if threshold is None or value is None:
            continue
        p_value = "p_value" in method.replace("-", "_").lower()
        if (value < threshold) if p_value else (value >= threshold):
            found.append(str(config["column"]))
    return sorted(found)


def main() -> None:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    imports_mb = peak_rss_mb()
    started = time.perf_counter()
    reference, current = (pq.read_table(path, columns=NUMERIC).to_pandas() for path in sys.argv[1:3])
    loaded = time.perf_counter()
    imported = time.perf_counter()
    cpu_started = time.process_time()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    seconds = time.perf_counter() - imported
    import evidently

    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": time.process_time() - cpu_started,
                "load_seconds": loaded - started,
                "peak_rss_mb": peak_rss_mb(),
                "imports_rss_mb": imports_mb,
                "rows": len(reference),
                "features": len(NUMERIC),
                "drifted": _drifted(snapshot),
                "version": evidently.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
