"""The seam every flavor implements: save a live model to bytes, load bytes back to a predictor."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from shipyard.core.inputs import InputLayout


@dataclass(frozen=True, slots=True)
class SavedModel:
    """An artifact's bytes and what is needed to load them again (format, input layout, classes)."""

    data: bytes
    options: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Predictor(Protocol):
    """A loaded model, called on input already shaped to its ``InputLayout``."""

    classes: tuple[Any, ...] | None
    """Class labels in the order of ``predict_proba`` columns; None when not a classifier."""

    def predict(self, x: Any) -> np.ndarray: ...

    def predict_proba(self, x: Any) -> np.ndarray | None:
        """Class probabilities, one column per class; None when the model gives none."""
        ...


class Flavor(Protocol):
    """How one framework's models are recognised, saved, loaded and described."""

    name: str

    def handles(self, model: Any) -> bool:
        """True when ``model`` is this flavor's; must not import optional libraries to decide."""
        ...

    def save(self, model: Any, *, trusted: bool = False) -> SavedModel: ...

    def load(self, data: bytes, options: Mapping[str, Any], *, trusted: bool = False) -> Predictor: ...

    def hyperparameters(self, model: Any) -> dict[str, Any]: ...

    def feature_names(self, model: Any) -> tuple[str, ...] | None:
        """The feature names the fitted model itself knows, to check a sample against."""
        ...

    def read_file(self, path: str, *, trusted: bool = False) -> Any:
        """Read a model saved by its own framework (or by this flavor) into a live object."""
        ...


def layout_option(options: Mapping[str, Any]) -> InputLayout:
    return InputLayout(options.get("input", InputLayout.ARRAY.value))


def plain_classes(classes: Any) -> tuple[Any, ...] | None:
    """Class labels as Python scalars (not NumPy ones), so they compare, print and store as JSON."""
    if classes is None:
        return None
    return tuple(c.item() if isinstance(c, np.generic) else c for c in classes)


def jsonable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameters as strict JSON: plain values kept; NaN/inf and objects (estimators) by repr."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            out[str(key)] = repr(value)
        elif value is None or isinstance(value, bool | int | float | str):
            out[str(key)] = value
        elif isinstance(value, list | tuple) and all(
            v is None or isinstance(v, bool | int | float | str) for v in value
        ):
            out[str(key)] = list(value)
        else:
            text = repr(value)
            out[str(key)] = text if len(text) <= 500 else text[:497] + "..."
    return out


def strings_as_categories(x: Any) -> Any:
    """Text columns of a DataFrame as pandas categories: boosters read learned categories only from those.

    Serving input carries categorical values as strings; XGBoost and LightGBM map them to what they saw
    in training only when the column has a category dtype.
    """
    import pandas as pd

    if not isinstance(x, pd.DataFrame):
        return x
    textual = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c].dtype)]
    return x.astype({c: "category" for c in textual}) if textual else x
