"""The one model every server serves, and the request bodies they all receive.

A LogisticRegression on scikit-learn's bundled breast-cancer data (30 numeric features), trained once per
run and handed to each server in its own format. The bodies are built from the dataset's first rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson
import pandas as pd


@dataclass(frozen=True)
class BenchModel:
    """The fitted model, the data it was trained on, and where its joblib file lies."""

    model: Any
    frame: pd.DataFrame
    path: Path

    @property
    def features(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def rows(self, n: int) -> list[dict[str, float]]:
        """The first ``n`` rows as dicts of plain floats, the shape every server is sent."""
        return [{k: float(v) for k, v in row.items()} for row in self.frame.iloc[:n].to_dict(orient="records")]

    def expected(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The model's own answers on the first ``n`` rows: what every server must return."""
        x = self.frame.iloc[:n]
        return self.model.predict(x), self.model.predict_proba(x)


def load_frame() -> tuple[pd.DataFrame, pd.Series]:
    """The breast-cancer features with spaces in their names replaced by '_', and the target."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.data.rename(columns=lambda c: str(c).replace(" ", "_"))
    return frame, data.target


def train(directory: Path) -> BenchModel:
    """Fit the model (deterministic: lbfgs, no randomness) and save it with joblib under ``directory``."""
    from sklearn.linear_model import LogisticRegression

    frame, target = load_frame()
    with warnings.catch_warnings():
        # Unscaled features make lbfgs slow to converge; the fit is the same on every run either way.
        warnings.simplefilter("ignore")
        model = LogisticRegression(max_iter=10_000).fit(frame, target)
    path = directory / "model.joblib"
    joblib.dump(model, path)
    return BenchModel(model, frame, path)


def body(bench: BenchModel, rows: int, *, key: str) -> bytes:
    """A JSON request body ``{key: [row, ...]}`` with the first ``rows`` rows."""
    return orjson.dumps({key: bench.rows(rows)})
