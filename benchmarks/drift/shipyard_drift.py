"""Shipyard's drift verdict from Parquet files, in a fresh process: prints time and peak memory as JSON.

Usage: shipyard_drift.py REFERENCE CURRENT [--numeric-only] [--rows N] [--chunk N]. Both files are streamed
in chunks through ``ProfileBuilder`` (the reference's bins are fixed by its first chunk, the current file
is counted in them), then ``window_drift`` judges every feature. Peak memory is the process's VmHWM.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import CATEGORICAL, NUMERIC
from memory import peak_rss_mb

from shipyard.core.profile import ProfileBuilder
from shipyard.monitoring.drift import window_drift


def _chunks(path: str, columns: list[str], rows: int | None, chunk: int) -> Iterator[dict[str, Any]]:
    """Column arrays of ``chunk`` rows: floats as NumPy views, dictionary columns as pandas Categoricals."""
    categorical = [c for c in columns if c in CATEGORICAL and c != "active"]
    # pre_buffer=False: with pyarrow's default, iter_batches keeps buffers of the row groups it has read,
    # and memory grows with the file (about 30 MB per 131,072 rows here) instead of staying at one batch.
    source = pq.ParquetFile(path, read_dictionary=categorical, pre_buffer=False)
    seen = 0
    for batch in source.iter_batches(batch_size=chunk, columns=columns):
        if rows is not None and seen >= rows:
            break
        if rows is not None and seen + batch.num_rows > rows:
            batch = batch.slice(0, rows - seen)
        seen += batch.num_rows
        out: dict[str, Any] = {}
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if pa.types.is_dictionary(column.type):
                out[name] = column.to_pandas()  # a Categorical: counted by its codes
            elif pa.types.is_boolean(column.type):
                out[name] = column.to_numpy(zero_copy_only=False)  # NumPy booleans: counted by np.unique
            else:
                out[name] = column.to_numpy(zero_copy_only=False)
        yield out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("--numeric-only", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--chunk", type=int, default=131_072)
    args = parser.parse_args()
    columns = list(NUMERIC) + ([] if args.numeric_only else list(CATEGORICAL))
    # SciPy loads on first use (KS and chi-square p-values); a running service has it loaded already, so
    # the clock starts after it, as it does for the other tools after theirs.
    import scipy.special
    import scipy.stats  # noqa: F401

    imports_mb = peak_rss_mb()
    started = time.perf_counter()
    cpu_started = time.process_time()
    reference = ProfileBuilder()
    for chunk in _chunks(args.reference, columns, args.rows, args.chunk):
        reference.add(chunk)
    profile = reference.reference_profile()
    live = ProfileBuilder(profile)
    for chunk in _chunks(args.current, columns, args.rows, args.chunk):
        live.add(chunk)
    result = window_drift(profile, live.profiles())
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_rss_mb": peak_rss_mb(),
                "imports_rss_mb": imports_mb,
                "rows": reference.rows,
                "features": len(columns),
                "drifted": sorted(result.drifted_features),
                "tests": sorted({f.test for f in result.features if f.test}),
            }
        )
    )


if __name__ == "__main__":
    main()
