"""Direct loss estimation (DLE): a regressor's MAE and RMSE estimated from its inputs, without labels.

At registration a small loss model learns each labelled row's absolute and squared error from the row's
features and the model's prediction (NannyML's DLE, with scikit-learn's histogram gradient boosting in
place of LightGBM at LightGBM's default settings). A serving worker applies it to each batch in the
background and keeps three sums per window (rows, estimated absolute error, estimated squared error), so a
month is estimated by adding windows: MAE is the mean estimated absolute error and RMSE the root of the mean
estimated squared error, each per-row estimate clipped at zero as NannyML does. The band is NannyML's: three
sampling errors, sized by the spread of the realised errors on the rows the loss model learnt from.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard.core.loss_model import MAX_CATEGORY_CODES, ErrorSpread, LossFeature, LossModel
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.loss_trees import CompiledTrees, ensemble_from_sklearn

MIN_ROWS = 40
"""Labelled rows a loss model needs: two leaves' worth at the learner's 20 rows per leaf."""


class TooFewRowsError(InvalidArgumentError):
    """Fewer than ``MIN_ROWS`` labelled rows with a finite target and prediction: nothing to learn errors from."""


MAX_ROWS = 50_000
"""Labelled rows a loss model learns from at most (a seeded sample beyond), bounding registration time."""
BAND_SAMPLING_ERRORS = 3.0
"""The band is the estimate plus or minus this many sampling errors (NannyML's choice)."""
LEARNER = {
    # LightGBM's LGBMRegressor defaults, which NannyML's DLE uses: 100 rounds of 31-leaf trees at rate 0.1,
    # at least 20 rows per leaf, no regularisation, 255 bins; no early stopping, so every fit is the same.
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 0.0,
    "max_bins": 255,
    "early_stopping": False,
    "random_state": 0,
}


# --- inputs -------------------------------------------------------------------------------------------------


def loss_inputs(features: Sequence[LossFeature], columns: Mapping[str, Any], predictions: ArrayLike) -> np.ndarray:
    """Rows as the loss model reads them: one float column per feature (category codes for categorical ones,
    NaN where missing, unreadable or a level never seen) and the prediction last."""
    prediction = _floats(np.asarray(predictions).reshape(-1))
    x = np.full((len(prediction), len(features) + 1), np.nan)
    for i, spec in enumerate(features):
        values = columns.get(spec.name)
        if values is None:
            continue
        array = np.asarray(values)
        if len(array) != len(prediction):
            raise InvalidArgumentError(
                f"feature {spec.name!r} has {len(array)} values for {len(prediction)} predictions"
            )
        if spec.levels is None:
            x[:, i] = _floats(array)
        else:
            code: dict[str | None, float] = {level: float(j) for j, level in enumerate(spec.levels)}
            x[:, i] = np.fromiter((code.get(_level(v), np.nan) for v in array.tolist()), np.float64, len(array))
    x[:, -1] = prediction
    return x


def _level(value: Any) -> str | None:
    """A category as the loss model names it: its text (booleans as "True"/"False"), None when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _floats(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fiub":
        return values.astype(np.float64)
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values.tolist()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = value
    return out


def _levels(values: np.ndarray) -> tuple[str, ...]:
    """A categorical feature's levels, most frequent first; beyond what a split can test, the rarest count as
    missing (ties broken by name, so the same rows always give the same codes)."""
    seen: dict[str, int] = {}
    for value in values.tolist():
        level = _level(value)
        if level is not None:
            seen[level] = seen.get(level, 0) + 1
    ranked = sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(level for level, _ in ranked[:MAX_CATEGORY_CODES])


# --- fitting ------------------------------------------------------------------------------------------------


def fit_loss_model(
    columns: Mapping[str, Any],
    predictions: ArrayLike,
    target: ArrayLike,
    *,
    categorical: Collection[str] = (),
    data: str = "training",
) -> LossModel:
    """Learn a regressor's per-row absolute and squared error from labelled rows (NannyML's DLE).

    ``columns`` maps each feature to its values (those in ``categorical`` encoded as levels); rows whose
    target or prediction is missing or not finite are left out, as NannyML leaves them out.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    y = _target(target)
    prediction = _floats(np.asarray(predictions).reshape(-1))
    if len(y) != len(prediction):
        raise InvalidArgumentError(f"the target has {len(y)} values but there are {len(prediction)} predictions")
    keep = np.isfinite(y) & np.isfinite(prediction)
    if int(keep.sum()) < MIN_ROWS:
        raise TooFewRowsError(
            f"a loss model needs at least {MIN_ROWS} rows with a finite target and prediction; got {int(keep.sum())}"
        )
    rows = np.flatnonzero(keep)
    if len(rows) > MAX_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_ROWS, replace=False))
    chosen = {name: np.asarray(values)[rows] for name, values in columns.items()}
    features = tuple(
        LossFeature(name, _levels(values) if name in categorical else None) for name, values in chosen.items()
    )
    x = loss_inputs(features, chosen, prediction[rows])
    error = y[rows] - prediction[rows]
    absolute, squared = np.abs(error), np.square(error)
    mask = np.array([f.levels is not None for f in features] + [False])
    fitted = []
    # One OpenMP thread: these fits are small, and on a busy machine a thread team waiting for its slowest
    # member made them 10-20x slower (0.5 s became 10 s for 2,000 rows on two shared cores).
    with threadpool_limits(limits=1, user_api="openmp"):
        for outcome in (absolute, squared):
            learner = HistGradientBoostingRegressor(categorical_features=mask if mask.any() else None, **LEARNER)
            fitted.append(ensemble_from_sklearn(learner.fit(x, outcome)))
    return LossModel(
        features=features,
        absolute=fitted[0],
        squared=fitted[1],
        rows=len(rows),
        reference=ErrorSpread(
            float(absolute.mean()), float(absolute.std()), float(squared.mean()), float(squared.std())
        ),
        data=data,
    )


def _target(target: ArrayLike) -> np.ndarray:
    values = np.asarray(target).reshape(-1)
    if values.dtype.kind in "fiu":
        return values.astype(np.float64)
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"a loss model needs a numeric target (a regressor's); got values such as {values[:3].tolist()}"
        ) from exc


# --- serving: per-row errors and per-window sums -----------------------------------------------------------


class LossScorer:
    """A version's loss model ready to apply: trees compiled once when the version is first served."""

    def __init__(self, model: LossModel) -> None:
        self.model = model
        self.absolute = CompiledTrees(model.absolute)
        self.squared = CompiledTrees(model.squared)

    def errors(self, columns: Mapping[str, Any], predictions: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Each row's estimated absolute and squared error (clipped at zero); NaN where the prediction is
        missing or not finite, since a loss model cannot say how wrong a prediction that is not a number is."""
        x = loss_inputs(self.model.features, columns, predictions)
        absolute = np.maximum(0.0, self.absolute.predict(x))
        squared = np.maximum(0.0, self.squared.predict(x))
        unusable = ~np.isfinite(x[:, -1])
        absolute[unusable] = np.nan
        squared[unusable] = np.nan
        return absolute, squared

    def summary(self, columns: Mapping[str, Any], predictions: ArrayLike) -> LossSummary:
        return LossSummary.of(*self.errors(columns, predictions))


@dataclass(frozen=True, slots=True)
class LossSummary:
    """A window's estimated errors as sums, mergeable across workers and replicas by adding.

    ``unscored`` counts rows the loss model could not score (a prediction that is not a finite number).
    """

    rows: int = 0
    absolute_sum: float = 0.0
    squared_sum: float = 0.0
    unscored: int = 0

    @classmethod
    def of(cls, absolute: np.ndarray, squared: np.ndarray) -> LossSummary:
        scored = np.isfinite(absolute) & np.isfinite(squared)
        n = int(scored.sum())
        return cls(n, float(absolute[scored].sum()), float(squared[scored].sum()), int(len(absolute) - n))

    def merge(self, other: LossSummary) -> LossSummary:
        return LossSummary(
            self.rows + other.rows,
            self.absolute_sum + other.absolute_sum,
            self.squared_sum + other.squared_sum,
            self.unscored + other.unscored,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "absolute_sum": self.absolute_sum,
            "squared_sum": self.squared_sum,
            "unscored": self.unscored,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossSummary:
        return cls(
            int(data.get("rows", 0)),
            float(data.get("absolute_sum", 0.0)),
            float(data.get("squared_sum", 0.0)),
            int(data.get("unscored", 0)),
        )
