"""Performance of a scored dataset: its target column against its prediction column, as the live report does.

A file says nothing about the task, so without a version's signature it is inferred: numbers with fractions,
or more than ``MAX_CLASSES`` distinct values, are a regression; anything else is classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from shipyard.core.signature import OutputKind
from shipyard.monitoring.report import Performance

MAX_CLASSES = 50


def performance_of(
    targets: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    *,
    target: str | None,
    prediction: str | None,
    classification: bool | None = None,
    classes: Sequence[Any] | None = None,
) -> tuple[Performance | None, str | None]:
    """The figures, or None and why they could not be computed (never an exception on odd data)."""
    if not target or not prediction:
        return None, "give the target and prediction columns (--target, --prediction) for performance"
    if not targets:
        return None, f"the current data has no target column {target!r}"
    if not predictions:
        return None, f"the current data has no prediction column {prediction!r}"
    y, p = np.concatenate(targets), np.concatenate(predictions)
    both = np.array([_present(a) and _present(b) for a, b in zip(y.tolist(), p.tolist(), strict=True)], dtype=bool)
    if not both.any():
        return None, f"no row has both a {target!r} and a {prediction!r} value"
    y, p = y[both], p[both]
    regression = not classification if classification is not None else _looks_like_regression(y, p)
    from shipyard.monitoring.metrics import classification_performance, regression_performance

    if regression:
        try:
            y_num, p_num = y.astype(np.float64), p.astype(np.float64)
        except (TypeError, ValueError):
            return None, f"{target!r} or {prediction!r} holds text, so regression figures cannot be computed"
        return Performance(
            labelled=int(y.size), kind=OutputKind.REGRESSION, regression=regression_performance(y_num, p_num)
        ), None
    labels = list(classes) if classes is not None else sorted({_label(v) for v in (*y.tolist(), *p.tolist())}, key=str)
    y_lab = np.asarray([_label(v) for v in y.tolist()], dtype=object)
    p_lab = np.asarray([_label(v) for v in p.tolist()], dtype=object)
    figures = classification_performance(y_lab, p_lab, None, classes=labels)
    return Performance(labelled=int(y.size), kind=OutputKind.CLASSIFICATION, classification=figures), None


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _label(value: Any) -> Any:
    """1.0 and 1 are one class (a CSV column with a gap reads as floats)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _looks_like_regression(y: np.ndarray, p: np.ndarray) -> bool:
    values = [v.item() if isinstance(v, np.generic) else v for v in (*y.tolist(), *p.tolist())]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return False
    fractional = any(isinstance(v, float) and not v.is_integer() for v in values)
    return fractional or len(set(values)) > MAX_CLASSES
