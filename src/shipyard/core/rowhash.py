"""Duplicate rows, found by a 64-bit hash of each row's values.

Two rows are duplicates when every column holds the same value (missing equals missing, 1 equals 1.0). Each
column becomes one 64-bit number per value (a number's float bits; any other value's Python hash, as the
comparison of rows happens within one process; a categorical's levels hashed once and taken by code), mixed
with splitmix64 and combined across columns. NumPy does the work column by column: a background batch of a
hundred rows costs tens of microseconds, not the milliseconds a DataFrame hash takes. Two different rows
share a hash with probability about n^2 / 2^65 (one in ten thousand million at a million rows), which is
the only way a count can be wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

_MISSING = np.uint64(0x5BD1E9955BD1E995)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_COMBINE = np.uint64(0x100000001B3)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


def _number_bits(values: np.ndarray) -> np.ndarray:
    """A number's float64 bits (so 1 and 1.0 agree); integers past 2**53, which floats would merge, their own."""
    floats = values.astype(np.float64) + 0.0  # -0.0 becomes 0.0
    bits = np.where(np.isnan(floats), np.nan, floats).view(np.uint64)  # one NaN pattern for every missing
    if values.dtype.kind in "iu":
        large = np.abs(values.astype(np.float64)) > 2.0**53
        if large.any():
            bits = bits.copy()
            bits[large] = values[large].astype(np.int64).view(np.uint64) ^ _GOLDEN
    return np.asarray(bits, dtype=np.uint64)


def _value_key(value: Any) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return int(_MISSING)
    try:
        return hash(value) & 0xFFFFFFFFFFFFFFFF
    except TypeError:  # lists and dicts from JSON: by their text
        return hash(repr(value)) & 0xFFFFFFFFFFFFFFFF


def _object_keys(values: Any) -> np.ndarray:
    import pandas as pd

    keys = [int(_MISSING) if value is pd.NA or value is pd.NaT else _value_key(value) for value in values]
    return np.fromiter(keys, dtype=np.uint64, count=len(keys))


def _column_keys(values: Any) -> np.ndarray:
    """One uint64 per value, equal for equal values."""
    import pandas as pd

    if isinstance(values, pd.Series):
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            values = values.array
        elif pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            values = values.to_numpy(dtype=np.float64, na_value=np.nan)
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            nanoseconds = values.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.uint64)
            return np.where(values.isna().to_numpy(), _MISSING, nanoseconds)
        else:
            values = values.to_numpy(dtype=object)
    if isinstance(values, pd.Categorical):
        levels = _object_keys(values.categories.to_numpy(dtype=object))
        codes = np.asarray(values.codes, dtype=np.int64)
        return np.where(codes >= 0, levels[np.maximum(codes, 0)] if levels.size else _MISSING, _MISSING)
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return _number_bits(array)
    return _object_keys(array.ravel().tolist())


def row_hashes(columns: Mapping[str, Any]) -> np.ndarray:
    """One uint64 per row over the given columns, in their order."""
    combined: np.ndarray | None = None
    for values in columns.values():
        keys = _mix(_column_keys(values))
        if combined is None:
            combined = keys
        else:
            with np.errstate(over="ignore"):
                combined = (combined * _COMBINE) ^ keys
    return _mix(combined) if combined is not None else np.zeros(0, dtype=np.uint64)


def duplicates_within(hashes: np.ndarray) -> int:
    """Rows equal to an earlier row of the same set of hashes."""
    if hashes.size < 2:
        return 0
    ordered = np.sort(hashes)  # sort-based: NumPy's hash-based unique is several times slower here
    return int(ordered.size - 1 - np.count_nonzero(np.diff(ordered)))
