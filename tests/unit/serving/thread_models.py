"""A model that says where it ran: the data plane decides per version whether a call runs on the event loop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd


class ReportsItsThread:
    """Predicts, for each row, 1.0 when called on the main thread (where a test's event loop runs), else 0.0.

    With ``delay_s`` its one-row call is slow enough for the data plane to run it in the thread pool.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.delay_s:
            time.sleep(self.delay_s)
        on_loop_thread = threading.current_thread() is threading.main_thread()
        return np.full(len(frame), 1.0 if on_loop_thread else 0.0)
