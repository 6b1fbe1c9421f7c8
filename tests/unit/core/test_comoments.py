"""Co-moments give NumPy's Pearson r, merge by adding (any split of the rows gives the same r), skip incomplete
rows, survive large offsets, and say None where r is undefined."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard.core.comoments import CoMoments, choose_features
from shipyard.core.rowhash import duplicates_within, row_hashes


def _columns(n: int, seed: int, offset: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return {"x": x + offset, "y": 0.6 * x + 0.8 * rng.normal(size=n) + offset, "z": rng.uniform(size=n)}


def test_correlation_matches_numpy_to_1e12() -> None:
    columns = _columns(5000, seed=0)
    names, means = choose_features(columns)
    moments = CoMoments.empty(names, means).add(columns)
    expected = np.corrcoef(np.vstack([columns["x"], columns["y"], columns["z"]]))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            r = moments.correlation(a, b)
            assert r is not None and abs(r - expected[i, j]) < 1e-12


def test_merging_batches_equals_one_pass_whatever_the_split() -> None:
    columns = _columns(3000, seed=1)
    names, means = choose_features(columns)
    whole = CoMoments.empty(names, means).add(columns)
    parts = CoMoments.empty(names, means)
    for start, stop in ((0, 7), (7, 1000), (1000, 3000)):
        parts = parts.merge(CoMoments.empty(names, means).add({k: v[start:stop] for k, v in columns.items()}))
    assert parts.n == whole.n == 3000
    # Summation order differs, so the last bits may: r agrees to 1e-12.
    assert abs((parts.correlation("x", "y") or 0) - (whole.correlation("x", "y") or 0)) < 1e-12
    assert CoMoments.from_dict(whole.to_dict()) == whole


def test_large_offsets_do_not_cancel_the_correlation_away() -> None:
    """Epoch-second-sized values: sums about the reference mean keep r exact where raw sums would not."""
    columns = _columns(2000, seed=2, offset=1.7e9)
    names, means = choose_features(columns)
    r = CoMoments.empty(names, means).add(columns).correlation("x", "y")
    assert r is not None and abs(r - np.corrcoef(columns["x"], columns["y"])[0, 1]) < 1e-9


def test_rows_missing_a_feature_are_left_out_and_constant_features_have_no_r() -> None:
    columns = _columns(500, seed=3)
    columns["x"][:50] = np.nan
    moments = CoMoments.empty(("x", "y", "z"), (0.0, 0.0, 0.5)).add(columns)
    assert moments.n == 450
    flat = CoMoments.empty(("x", "c"), (0.0, 1.0)).add({"x": columns["y"], "c": np.ones(500)})
    assert flat.correlation("x", "c") is None
    assert CoMoments.empty(("x", "y"), (0.0, 0.0)).correlation("x", "y") is None  # no rows
    with pytest.raises(ValueError, match="different features"):
        moments.merge(flat)


def test_choose_features_takes_numeric_columns_with_spread_in_column_order_up_to_ten() -> None:
    rng = np.random.default_rng(4)
    columns: dict[str, np.ndarray] = {"text": np.array(["a"] * 10, dtype=object), "flag": np.ones(10, dtype=bool)}
    columns["constant"] = np.full(10, 3.0)
    for i in range(12):
        columns[f"n{i}"] = rng.normal(size=10)
    names, means = choose_features(columns)
    assert names == tuple(f"n{i}" for i in range(10))
    assert means[0] == pytest.approx(float(columns["n0"].mean()))


def test_duplicate_rows_are_counted_with_missing_equal_to_missing() -> None:
    columns = {
        "a": np.array([1.0, 1.0, np.nan, np.nan, 2.0]),
        "b": np.array(["x", "x", None, None, "x"], dtype=object),
    }
    assert duplicates_within(row_hashes(columns)) == 2
    assert duplicates_within(row_hashes({"a": np.array([1.0, 2.0, 3.0])})) == 0
    # Values pandas cannot hash as they are (lists from JSON) are hashed by their text.
    listed = {"a": np.array([[1, 2], [1, 2], [3]], dtype=object)}
    assert duplicates_within(row_hashes(listed)) == 1
