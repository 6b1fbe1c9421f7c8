"""Duplicate rows, found by a 64-bit hash of each row's values.

Two rows are duplicates when every column holds the same value (missing equals missing). Rows are hashed
with pandas' ``hash_pandas_object`` (SipHash of each value, combined across columns), so comparing rows costs
one 8-byte number each; two different rows share a hash with probability about n^2 / 2^65 (one in ten
thousand million at a million rows), which is the only way a count can be wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def row_hashes(columns: Mapping[str, Any]) -> np.ndarray:
    """One uint64 per row over the given columns (in their order); values that pandas cannot hash as they
    are (lists, dicts from JSON) are hashed by their text."""
    import pandas as pd

    frame = pd.DataFrame({str(name): _hashable(values) for name, values in columns.items()}, copy=False)
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=np.uint64)
    try:
        hashed = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:
        hashed = pd.util.hash_pandas_object(frame.astype(str), index=False)
    array: np.ndarray = hashed.to_numpy(dtype=np.uint64)
    return array


def duplicates_within(hashes: np.ndarray) -> int:
    """Rows equal to an earlier row of the same set of hashes."""
    if hashes.size < 2:
        return 0
    return int(hashes.size - np.unique(hashes).size)


def _hashable(values: Any) -> Any:
    """A column as pandas hashes it: categoricals and arrays as they are, other sequences as an array."""
    import pandas as pd

    if isinstance(values, pd.Series | pd.Categorical | np.ndarray):
        return values
    return np.asarray(values, dtype=object)
