"""Labels, predictions and class probabilities as arrays: one column, the classes, each value's class index.

Labels may be any values (strings, ints, None for "not known yet"); mixed types stay apart (0 is not "0")
and a value that is not one of the model's classes is encoded as -1 so callers can count and skip it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.jsonsafe import json_value
from shipyard.errors import InvalidArgumentError

# Probabilities a hair outside [0, 1] (float32 softmax, rounding) are clipped; anything further is a bug.
PROBABILITY_TOLERANCE = 1e-6

# Labels, predictions and classes may be any values (strings, ints, None for "not known yet"), which numpy's
# ``ArrayLike`` does not admit; numbers may have gaps (None) that are counted as missing.
Values = ArrayLike | Sequence[Any]
Numbers = ArrayLike | Sequence[float | None]


# --- input handling ---------------------------------------------------------------------------------------


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_1d(values: Values, name: str) -> np.ndarray:
    """One column of labels, predictions or group values, keeping mixed types apart (0 is not "0")."""
    array = np.asarray(values)
    if array.dtype.kind in "US" and not isinstance(values, np.ndarray):
        # numpy reads [0, "1"] as ["0", "1"]: keep the caller's values so 0 and "0" stay different
        as_objects = np.asarray(values, dtype=object)
        if not all(isinstance(v, str) for v in as_objects.ravel().tolist()):
            array = as_objects
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidArgumentError(f"{name} must be a one-dimensional sequence; got an array of shape {array.shape}")
    return array


def distinct(values: np.ndarray) -> list[Any]:
    try:
        return list(np.unique(values).tolist())
    except TypeError:  # an object array mixing types cannot be sorted
        return list(dict.fromkeys(values.tolist()))


def resolve_classes(classes: Values | None, *observed: np.ndarray) -> tuple[Any, ...]:
    """The model's classes as given, or (as scikit-learn does) the sorted labels and predictions seen."""
    if classes is not None:
        resolved = tuple(np.asarray(classes, dtype=object).ravel().tolist())
        if len(set(resolved)) != len(resolved):
            raise InvalidArgumentError(f"classes must be distinct; got {list(resolved)}")
        return resolved
    seen = {v for array in observed for v in distinct(array) if not is_missing(v)}
    try:
        return tuple(sorted(seen))
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in seen})
        raise InvalidArgumentError(
            f"labels and predictions mix value types ({', '.join(kinds)}), so their order is ambiguous; "
            "pass classes= in the model's order"
        ) from exc


def encode(values: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Each value's position in ``classes``; -1 where it is not one of them."""
    index = {c: i for i, c in enumerate(classes)}

    def lookup(value: Any) -> int:
        try:
            return index.get(value, -1)
        except TypeError:  # unhashable: cannot be a class
            return -1

    try:
        uniques, inverse = np.unique(values, return_inverse=True)
    except TypeError:  # mixed types: look each row up
        return np.fromiter((lookup(v) for v in values.tolist()), dtype=np.intp, count=values.size)
    codes = np.array([lookup(u) for u in uniques.tolist()], dtype=np.intp)
    return codes[inverse.ravel()] if values.size else np.empty(0, dtype=np.intp)


def index_of(classes: Sequence[Any], value: Any, name: str) -> int:
    for i, c in enumerate(classes):
        if c == value:
            return i
    raise InvalidArgumentError(f"{name}={value!r} is not one of the classes {[json_value(c) for c in classes]}")


def probability_rows(probabilities: ArrayLike, k: int | None = None) -> np.ndarray:
    """A float (n, k) matrix clipped to [0, 1]; rows with a missing value keep their NaN for callers to skip."""
    proba = np.asarray(probabilities, dtype=np.float64)
    if proba.size == 0:
        return np.empty((0, k or 0))
    if proba.ndim != 2 or (k is not None and proba.shape[1] != k):
        expected = "(n, k)" if k is None else f"(n, {k})"
        raise InvalidArgumentError(
            f"probabilities must be a {expected} array, one column per class in classes order; got shape {proba.shape}"
        )
    finite = np.isfinite(proba)
    outside = finite & ((proba < -PROBABILITY_TOLERANCE) | (proba > 1 + PROBABILITY_TOLERANCE))
    if outside.any():
        raise InvalidArgumentError(f"probabilities must lie in [0, 1]; got {float(proba[outside][0])!r}")
    return np.clip(proba, 0.0, 1.0)


def as_numbers(values: Numbers, name: str) -> np.ndarray:
    """One column of numbers (labels, predictions, rewards); None and NaN stay as NaN for callers to count."""
    try:
        return as_1d(np.asarray(values, dtype=np.float64), name)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name} must be numbers: {exc}") from exc
