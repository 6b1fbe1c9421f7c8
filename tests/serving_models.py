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


class Doubler:
    """x * 2, optionally slow, optionally failing on a fixed share of inputs: canary candidates for tests."""

    def __init__(self, delay_s: float = 0.0, fail_one_in: int = 0) -> None:
        self.delay_s = delay_s
        self.fail_one_in = fail_one_in

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.delay_s:
            time.sleep(self.delay_s)
        values = frame["x"].to_numpy(dtype=float)
        if self.fail_one_in and any(round(v * 1000) % self.fail_one_in == 0 for v in values):
            raise RuntimeError("candidate bug on this input")
        return values * 2


class FailsOnLiveTraffic:
    """Passes its smoke test on the registration sample, then fails on every live request."""

    def __init__(self, known: tuple[float, ...] = (0.101, 0.202, 0.303, 0.404)) -> None:
        self.known = list(known)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame["x"].to_numpy(dtype=float)
        if not np.isin(values, self.known).all():
            raise RuntimeError("shadow candidate is broken")
        return values * 2


class AlwaysRaises:
    """Raises on every call: a candidate whose smoke test must fail, so its rollout is refused."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        raise RuntimeError(f"this model is broken ({len(frame)} rows)")
