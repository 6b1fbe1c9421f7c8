"""Models with behaviour tests need: one that raises on some inputs, one that is slow."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd


class RaisesOnNegative:
    """Predicts x * 2, and raises when any x is negative: a model bug the server must contain."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame["x"].to_numpy(dtype=float)
        if (values < 0).any():
            raise ValueError("negative input reached the model")
        return values * 2


class Sleepy:
    """Answers x + 1 after a pause, to exercise the thread-pool call path."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        time.sleep(0.005)
        return frame["x"].to_numpy(dtype=float) + 1
