"""Many requests' inputs as one set of feature columns, whatever shape each request came in.

A request reaches the recorder as rows (``{"instances": [...]}``), as columns (``{"inputs": {...}}``), as
the float matrix the model was called with, or as a frame. The recorder profiles and logs per feature
column, so the batch is turned into columns once, in the signature's feature order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def payload_columns(payloads: Sequence[Any], names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """Feature columns of all payloads stacked; None when they cannot be read as this signature's rows."""
    if not payloads:
        return {name: np.empty(0) for name in names}
    if all(isinstance(p, np.ndarray) for p in payloads):
        return _from_matrices(payloads, names)
    parts: dict[str, list[Any]] = {name: [] for name in names}
    for payload in payloads:
        if isinstance(payload, list):
            for name in names:
                parts[name].extend([row.get(name) if isinstance(row, dict) else None for row in payload])
        elif isinstance(payload, Mapping):
            length = _column_length(payload)
            for name in names:
                parts[name].extend(_column(payload.get(name), length))
        elif isinstance(payload, pd.DataFrame):
            for name in names:
                parts[name].extend(payload[name].tolist() if name in payload else [None] * len(payload))
        elif isinstance(payload, np.ndarray):
            matrix = np.atleast_2d(payload)
            if matrix.shape[1] != len(names):
                return None
            for i, name in enumerate(names):
                parts[name].extend(matrix[:, i].tolist())
        else:
            return None
    return {name: _array(values) for name, values in parts.items()}


def _from_matrices(payloads: Sequence[np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray] | None:
    matrices = payloads if all(p.ndim == 2 for p in payloads) else [np.atleast_2d(p) for p in payloads]
    if any(m.ndim != 2 or m.shape[1] != len(names) for m in matrices):
        return None
    stacked = np.vstack(matrices) if len(matrices) > 1 else matrices[0]
    return {name: stacked[:, i] for i, name in enumerate(names)}


def _column_length(payload: Mapping[str, Any]) -> int:
    for value in payload.values():
        if isinstance(value, list | np.ndarray | pd.Series):
            return len(value)
    return 1


def _column(value: Any, length: int) -> list[Any]:
    if isinstance(value, np.ndarray | pd.Series):
        return list(value.tolist())
    if isinstance(value, list):
        return value
    return [value] * length


def _array(values: list[Any]) -> np.ndarray:
    """Numbers as a float or int array; anything else (strings, mixed, missing) as objects."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        return np.asarray(values, dtype=object)
    if array.dtype.kind in "fiub" and array.ndim == 1:
        return array
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
