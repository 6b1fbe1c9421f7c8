"""Small real models and data for tests, trained on bundled or generated data with fixed seeds."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


@cache
def iris() -> tuple[np.ndarray, np.ndarray, LogisticRegression]:
    x, y = load_iris(return_X_y=True)
    return x, y, LogisticRegression(max_iter=500).fit(x, y)


@cache
def churn_frame(rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    """A table with numeric, string and nullable columns, like real tabular data."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "tenure_months": rng.integers(0, 72, rows),
            "monthly_charges": rng.normal(70, 20, rows).round(2),
            "plan": rng.choice(["basic", "plus", "premium"], rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    logits = 0.04 * frame["monthly_charges"] - 0.05 * frame["tenure_months"] + (frame["plan"] == "basic") * 1.0
    target = (logits + rng.normal(0, 1, rows) > 1.0).astype(int).to_numpy()
    return frame, target


@cache
def churn_pipeline() -> Pipeline:
    frame, target = churn_frame()
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure_months", "monthly_charges"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
        ]
    )
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))]).fit(frame, target)


@cache
def regression() -> tuple[np.ndarray, np.ndarray, LinearRegression]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + rng.normal(0, 0.1, 200)
    return x, y, LinearRegression().fit(x, y)
