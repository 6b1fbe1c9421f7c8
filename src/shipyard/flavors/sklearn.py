"""scikit-learn estimators and pipelines, saved with skops so that loading them runs no code.

A pickle is accepted only from a caller who says it is trusted: unpickling can run arbitrary code.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.inputs import InputLayout
from shipyard.errors import ModelLoadError, UnsupportedModelError, UntrustedArtifactError
from shipyard.flavors import skops_canonical, skops_trust
from shipyard.flavors.base import Predictor, SavedModel, jsonable_params, plain_classes
from shipyard.flavors.skops_trust import skops_io

__all__ = ["SklearnFlavor", "SklearnPredictor", "skops_io"]

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


class SklearnPredictor:
    """Calls the estimator's own methods, so results are exactly the estimator's."""

    def __init__(self, model: Any) -> None:
        self.model = model
        classes = getattr(model, "classes_", None) if _is_classifier(model) else None
        self.classes: tuple[Any, ...] | None = plain_classes(classes)
        self.predict = model.predict
        proba = getattr(model, "predict_proba", None) if self.classes is not None else None
        self._proba = proba
        self._classes_array = np.asarray(classes) if classes is not None else None
        self.predict_with_proba = self._labels_from_proba if proba is not None and _argmax_exact(model) else None

    def predict_proba(self, x: Any) -> np.ndarray | None:
        return self._proba(x) if self._proba is not None else None

    def _labels_from_proba(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        proba = self._proba(x)  # type: ignore[misc]
        return self._classes_array.take(np.argmax(proba, axis=1)), proba  # type: ignore[union-attr]


class SklearnFlavor:
    """Any scikit-learn estimator or Pipeline (ColumnTransformer with mixed columns included)."""

    name = "sklearn"

    def handles(self, model: Any) -> bool:
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator) and callable(getattr(model, "predict", None))

    def save(self, model: Any, *, trusted: bool = False) -> SavedModel:
        layout = InputLayout.FRAME if hasattr(model, "feature_names_in_") else InputLayout.ARRAY
        try:
            data = skops_canonical.dumps(model)
            fmt = "skops"
        except Exception as exc:  # skops raises a variety of errors for objects it cannot represent
            if not trusted:
                raise UnsupportedModelError(
                    f"cannot save {type(model).__name__} with skops ({exc}); pass trusted=True to store "
                    "it as a pickle, which only callers who pass trusted=True can load"
                ) from exc
            data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
            fmt = "pickle"
        return SavedModel(data, {"format": fmt, "input": layout.value})

    def load(self, data: bytes, options: Mapping[str, Any], *, trusted: bool = False) -> Predictor:
        fmt = options.get("format", "skops")
        if fmt == "pickle":
            if not trusted:
                raise UntrustedArtifactError(
                    "it is stored as a pickle, and unpickling can run arbitrary code; load it with "
                    "trusted=True (CLI: --trusted) only if you trust where it came from"
                )
            return SklearnPredictor(_unpickle(data))
        return SklearnPredictor(_skops_loads(data, trusted=trusted))

    def hyperparameters(self, model: Any) -> dict[str, Any]:
        try:
            return jsonable_params(model.get_params(deep=True))
        except Exception:  # a third-party estimator with a broken get_params still registers
            return {}

    def feature_names(self, model: Any) -> tuple[str, ...] | None:
        names = getattr(model, "feature_names_in_", None)
        return tuple(str(n) for n in names) if names is not None else None

    def read_file(self, path: str, *, trusted: bool = False) -> Any:
        file = Path(path)
        data = file.read_bytes()
        if file.suffix.lower() in PICKLE_SUFFIXES:
            if not trusted:
                raise UntrustedArtifactError(
                    f"{file.name} is a pickle file, and loading it can run arbitrary code; pass --trusted "
                    "(trusted=True) only if you trust where it came from, or save the model with skops"
                )
            if file.suffix.lower() == ".joblib":
                import joblib

                return joblib.load(io.BytesIO(data))
            return _unpickle(data)
        return _skops_loads(data, trusted=trusted)


def _skops_loads(data: bytes, *, trusted: bool) -> Any:
    """Rebuild a skops file; names outside the reviewed allow-list need the caller's trust."""
    return skops_trust.loads(data, trusted=trusted)


def _unpickle(data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise ModelLoadError(f"the pickle could not be loaded: {type(exc).__name__}: {exc}") from exc


# Estimators whose ``predict`` is, in scikit-learn's own code, the class with the highest probability
# (or an argmax of a score that ``predict_proba`` maps monotonically). For them one ``predict_proba``
# call gives both outputs exactly, and input validation runs once instead of twice.
ARGMAX_EXACT = frozenset(
    {
        "LogisticRegression",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "HistGradientBoostingClassifier",
        "GaussianNB",
    }
)


def _argmax_exact(model: Any) -> bool:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    return type(final).__name__ in ARGMAX_EXACT and type(final).__module__.startswith("sklearn.")


def _is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier

    try:
        return bool(is_classifier(model)) and hasattr(model, "classes_")
    except Exception:
        return hasattr(model, "classes_")
