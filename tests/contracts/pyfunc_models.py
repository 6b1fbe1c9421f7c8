"""Pyfunc models for the flavor contract tests: plain classes in a module file, as users write them."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


class LinearScorer:
    """A regression pyfunc holding a NumPy weight vector."""

    def __init__(self, weights: Any = None, bias: float = 0.0) -> None:
        self.weights = np.asarray([0.5, -0.25, 1.0] if weights is None else weights, dtype=np.float64)
        self.bias = float(bias)

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.weights + self.bias


class ThresholdClassifier:
    """A classifier pyfunc with string classes, probabilities from a logistic score."""

    def __init__(self, weights: Any = None) -> None:
        self.weights = np.asarray([1.0, -2.0, 0.5] if weights is None else weights, dtype=np.float64)
        self.classes_ = np.asarray(["no", "yes"])

    def predict_proba(self, x: Any) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(np.asarray(x, dtype=np.float64) @ self.weights)))
        return np.column_stack([1.0 - p, p])

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]


class Offset:
    """A user-defined helper object, which skops stores but will not load without trust."""

    def __init__(self, value: float) -> None:
        self.value = value


class WithHelper:
    """A pyfunc whose state holds an instance of a user class."""

    def __init__(self) -> None:
        self.offset = Offset(2.0)

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64).sum(axis=1) + self.offset.value


class WithBuffer:
    """A pyfunc holding an object skops cannot serialise (a BytesIO), but pickle can."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO(b"lookup table")

    def predict(self, x: Any) -> np.ndarray:
        return np.full(len(x), float(len(self.buffer.getvalue())))
