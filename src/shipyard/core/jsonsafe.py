"""Figures and labels on their way into JSON, which has no NaN, no infinity and no NumPy scalars."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def finite_or_none(value: float | None) -> float | None:
    """An undefined figure (None, NaN, infinite) is written as null."""
    return float(value) if value is not None and math.isfinite(value) else None


def json_value(value: Any) -> Any:
    """Labels and group values: NumPy scalars become Python ones, anything exotic its string form."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)
