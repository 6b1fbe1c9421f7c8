"""The benchmark's data: seeded reference and current tables written once to Parquet, in row groups.

25 features, 20 numeric of different shapes and 5 categorical (3 to 5,000 levels). The current table has
three shifted features, so every tool has something to find: x03 moves by one standard deviation, x11
widens 2.5 times around the same mean, and plan's level shares change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NUMERIC = tuple(f"x{i:02d}" for i in range(20))
CATEGORICAL = ("plan", "country", "device", "active", "user_id")
SHIFTED = ("x03", "x11", "plan")
ROW_GROUP = 131_072
PLANS = ("free", "basic", "pro", "team", "enterprise")
PLAN_P = (0.4, 0.3, 0.15, 0.1, 0.05)
SHIFTED_PLAN_P = (0.15, 0.2, 0.25, 0.25, 0.15)


def _numeric(rng: np.random.Generator, i: int, n: int) -> np.ndarray:
    makers: list[Callable[[int], np.ndarray]] = [
        lambda k: rng.normal(0, 1, k),
        lambda k: rng.normal(1000, 250, k),
        lambda k: rng.exponential(3.0, k),
        lambda k: rng.lognormal(0, 0.8, k),
        lambda k: rng.uniform(-5, 5, k),
        lambda k: rng.poisson(4, k).astype(np.float64),
        lambda k: rng.standard_t(5, k),
        lambda k: rng.gamma(2.0, 0.01, k),
    ]
    return makers[i % len(makers)](n)


def _dictionary(codes: np.ndarray, levels: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(levels))


def table(rows: int, *, seed: int, shifted: bool) -> pa.Table:
    """One table of ``rows`` rows; the same seed and flag give the same bytes every time."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i, name in enumerate(NUMERIC):
        values = _numeric(rng, i, rows)
        if shifted and name == "x03":
            values = values + values.std()
        if shifted and name == "x11":
            values = (values - values.mean()) * 2.5 + values.mean()
        columns[name] = pa.array(values)
    countries = [f"c{i:02d}" for i in range(30)]
    country_p = np.r_[np.full(10, 0.06), np.full(20, 0.02)]
    columns["plan"] = _dictionary(rng.choice(5, rows, p=SHIFTED_PLAN_P if shifted else PLAN_P), list(PLANS))
    columns["country"] = _dictionary(rng.choice(30, rows, p=country_p), countries)
    columns["device"] = _dictionary(rng.choice(3, rows, p=(0.6, 0.3, 0.1)), ["mobile", "desktop", "tablet"])
    columns["active"] = pa.array(rng.random(rows) < 0.7)
    columns["user_id"] = _dictionary(rng.integers(0, 5000, rows), [f"u{i}" for i in range(5000)])
    return pa.table(columns)


def write(directory: Path, rows: int) -> tuple[Path, Path]:
    """reference.parquet and current.parquet of ``rows`` rows each, in row groups of ``ROW_GROUP`` rows."""
    paths = directory / "reference.parquet", directory / "current.parquet"
    for path, seed, shifted in ((paths[0], 0, False), (paths[1], 1, True)):
        pq.write_table(table(rows, seed=seed, shifted=shifted), path, row_group_size=ROW_GROUP)
    return paths


if __name__ == "__main__":
    import sys

    write(Path(sys.argv[1]), int(sys.argv[2]))
