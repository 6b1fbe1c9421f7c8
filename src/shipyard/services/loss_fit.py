"""The loss model of a new regressor version: its labelled rows predicted, and the errors learnt (DLE).

The maths is ``monitoring.dle``; what lives here is the registration's side: which rows (holdout rows when
given, else the training rows, a seeded sample beyond ``MAX_ROWS``), the model's own predictions on them,
and errors that name the option at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.loss_model import LossModel
from shipyard.core.signature import FeatureType, OutputKind, Signature
from shipyard.errors import InvalidArgumentError, ShipyardError
from shipyard.monitoring.dle import MAX_ROWS, MIN_ROWS, TooFewRowsError, fit_loss_model

if TYPE_CHECKING:
    import pandas as pd


def needs_loss_model(signature: Signature) -> bool:
    """Only a regressor with one number per row has an error a loss model can learn."""
    return signature.output.kind is OutputKind.REGRESSION


def fit_for_registration(
    frame: pd.DataFrame,
    target: Any,
    predict: Callable[[pd.DataFrame], Any],
    signature: Signature,
    *,
    data: str,
    what: str,
) -> LossModel | None:
    """The loss model learnt from ``frame``'s rows (columns in the signature's order) and their ``target``.

    ``predict`` is the version's own model; ``what`` names the rows in errors (``training_data``,
    ``calibration_data``). Datetime features are left out: a timestamp is not a level the errors repeat at.
    Too few labelled rows is an error for holdout rows given for this, and no loss model (the report says
    so) for training rows, which were given to profile the data and may be few.
    """
    labels = np.asarray(target).reshape(-1)
    if len(labels) != len(frame):
        raise InvalidArgumentError(f"{_target_name(what)} has {len(labels)} values but {what} has {len(frame)} rows")
    if len(frame) < MIN_ROWS:
        if data == "training":
            return None
        raise InvalidArgumentError(
            f"{what} has {len(frame)} labelled rows; the loss model that estimates MAE and RMSE without labels "
            f"needs at least {MIN_ROWS}"
        )
    if len(frame) > MAX_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(len(frame), MAX_ROWS, replace=False))
        frame, labels = frame.iloc[rows], labels[rows]
    try:
        predictions = np.asarray(predict(frame), dtype=np.float64).reshape(len(frame), -1)
    except ShipyardError as exc:
        raise InvalidArgumentError(f"{what} does not fit the model's signature: {exc}") from exc
    except Exception as exc:  # the user's model failing on the user's rows: say so, whatever it raised
        raise InvalidArgumentError(
            f"the model fails on {what} (or gives no numbers): {type(exc).__name__}: {exc}"
        ) from exc
    if predictions.shape[1] != 1:
        raise InvalidArgumentError(
            f"a loss model estimates the error of one number per row; the model gives {predictions.shape[1]}"
        )
    used = [f for f in signature.features if f.type is not FeatureType.DATETIME]
    columns = {f.name: frame[f.name].to_numpy() for f in used}
    categorical = {f.name for f in used if not f.type.is_numeric}
    try:
        return fit_loss_model(columns, predictions[:, 0], labels, categorical=categorical, data=data)
    except TooFewRowsError as exc:
        if data == "training":
            return None
        raise InvalidArgumentError(f"{_target_name(what)}: {exc}") from exc
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{_target_name(what)}: {exc}") from exc


def _target_name(what: str) -> str:
    return what.replace("_data", "_target")
