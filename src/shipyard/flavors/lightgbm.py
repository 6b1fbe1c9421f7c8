"""LightGBM models, saved in LightGBM's own text format so that loading them runs no code.

The artifact is the booster's model string; a classifier's classes are kept in the flavor options and
the wrapper's rules re-applied on load (probabilities from the booster, label = class of the highest
probability, in the original label dtype), so results equal the original ``LGBMClassifier``'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.inputs import InputLayout
from shipyard.errors import ModelLoadError, UnsupportedModelError, missing_dependency
from shipyard.flavors.base import Predictor, SavedModel, jsonable_params, plain_classes, strings_as_categories

CLASSIFIER = "LGBMClassifier"
REGRESSOR = "LGBMRegressor"
RANKER = "LGBMRanker"
BOOSTER = "Booster"
_KINDS = (CLASSIFIER, REGRESSOR, RANKER, "LGBMModel", BOOSTER)


class LightGBMPredictor:
    """Booster predictions, with the scikit-learn classifier's label and probability rules on top."""

    def __init__(self, booster: Any, *, classes: np.ndarray | None) -> None:
        self.booster = booster
        self._labels = classes
        self.classes: tuple[Any, ...] | None = plain_classes(classes)
        self._categorical = bool(getattr(booster, "pandas_categorical", None))

    def predict(self, x: Any) -> np.ndarray:
        if self._labels is None:
            return self.booster.predict(self._prepare(x))
        proba = self.predict_proba(x)
        assert proba is not None
        return self._labels[np.argmax(proba, axis=1)]

    def predict_proba(self, x: Any) -> np.ndarray | None:
        if self._labels is None:
            return None
        result = self.booster.predict(self._prepare(x))
        # A binary booster gives p(second class) only; LGBMClassifier stacks [1 - p, p].
        return np.vstack((1.0 - result, result)).transpose() if result.ndim == 1 else result

    def _prepare(self, x: Any) -> Any:
        return strings_as_categories(x) if self._categorical else x


class LightGBMFlavor:
    """``LGBMClassifier`` / ``LGBMRegressor`` / ``LGBMRanker`` and ``lightgbm.Booster``."""

    name = "lightgbm"

    def handles(self, model: Any) -> bool:
        return _lightgbm_base(type(model)) is not None

    def save(self, model: Any, *, trusted: bool = False) -> SavedModel:
        _require_lightgbm()
        kind = _lightgbm_base(type(model))
        if kind is None:
            raise UnsupportedModelError(
                f"cannot save {type(model).__name__} with the lightgbm flavor; it saves a lightgbm.Booster "
                "or an LGBMClassifier / LGBMRegressor / LGBMRanker"
            )
        options: dict[str, Any] = {"format": "text", "wrapper": kind}
        if kind == BOOSTER:
            booster = model
            layout = InputLayout.FRAME if booster.pandas_categorical else InputLayout.ARRAY
        else:
            booster = _fitted_booster(model)
            if callable(getattr(model, "objective", None)):
                raise UnsupportedModelError(
                    f"{type(model).__name__} was trained with a custom objective function, which is not "
                    "part of the saved model; register the booster (model.booster_) and map its raw scores "
                    "yourself, or wrap it in a pyfunc"
                )
            layout = InputLayout.FRAME if _has_feature_names(model) else InputLayout.ARRAY
            if kind == CLASSIFIER:
                classes = np.asarray(model.classes_)
                options["classes"] = [c.item() if isinstance(c, np.generic) else c for c in classes]
                options["classes_dtype"] = classes.dtype.str if classes.dtype.kind != "O" else "object"
        options["input"] = layout.value
        return SavedModel(booster.model_to_string().encode("utf-8"), options)

    def load(self, data: bytes, options: Mapping[str, Any], *, trusted: bool = False) -> Predictor:
        booster = _booster_from_text(data, what="the artifact")
        classes = options.get("classes")
        labels = None
        if classes is not None:
            dtype = options.get("classes_dtype")
            labels = np.asarray(list(classes), dtype=object if dtype == "object" else dtype)
        return LightGBMPredictor(booster, classes=labels)

    def hyperparameters(self, model: Any) -> dict[str, Any]:
        try:
            params = model.params if _lightgbm_base(type(model)) == BOOSTER else model.get_params()
            return jsonable_params(params or {})
        except Exception:  # a subclass with a broken get_params still registers
            return {}

    def feature_names(self, model: Any) -> tuple[str, ...] | None:
        if _lightgbm_base(type(model)) == BOOSTER:
            # A booster always has names (Column_0, … when it was trained on a matrix): the frame
            # layout is kept for boosters with pandas categories, which need named columns.
            return tuple(model.feature_name()) if model.pandas_categorical else None
        if not _has_feature_names(model):
            return None
        return tuple(str(n) for n in model.feature_names_in_)

    def read_file(self, path: str, *, trusted: bool = False) -> Any:
        file = Path(path)
        return _booster_from_text(file.read_bytes(), what=file.name)


def _booster_from_text(data: bytes, *, what: str) -> Any:
    lightgbm = _require_lightgbm()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelLoadError(f"{what} is not a LightGBM text model: it is not UTF-8 text") from exc
    problem = _text_model_problem(text)
    if problem:
        raise ModelLoadError(f"{what} is not a complete LightGBM text model: {problem}")
    try:
        return lightgbm.Booster(model_str=text)
    except Exception as exc:  # LightGBMError
        raise ModelLoadError(f"LightGBM could not read {what}: {exc}") from exc


def _text_model_problem(text: str) -> str | None:
    """Why ``text`` is not a whole model string, checked before LightGBM parses it.

    LightGBM aborts the whole process (``std::terminate``) on some truncated model strings instead of
    raising, so a damaged artifact must be refused before it reaches the parser.
    """
    if not text.startswith("tree\n"):
        return "it does not start with the 'tree' header"
    end = text.find("\nend of trees")
    if end < 0:
        return "the 'end of trees' marker is missing (the file is truncated)"
    start = text.find("\nTree=")
    if start < 0 or start > end:
        return "it contains no trees"
    sizes = re.search(r"^tree_sizes=([0-9 ]*)$", text[:start], flags=re.MULTILINE)
    if sizes is not None:
        # The header lists each tree's size in bytes; LightGBM seeks by them, so they must add up.
        expected = sum(int(s) for s in sizes.group(1).split())
        offset = start + 1
        if not text[offset + expected :].lstrip("\n").startswith("end of trees"):
            return "the trees do not match the sizes listed in its header"
    return None


def _lightgbm_base(cls: type) -> str | None:
    """The name of the LightGBM class ``cls`` is or derives from, found without importing lightgbm."""
    for klass in cls.__mro__:
        if klass.__module__.startswith("lightgbm.") and klass.__name__ in _KINDS:
            return klass.__name__
    return None


def _fitted_booster(model: Any) -> Any:
    try:
        return model.booster_
    except Exception as exc:  # LGBMNotFittedError
        raise UnsupportedModelError(f"{type(model).__name__} is not fitted; call fit() before registering it") from exc


def _has_feature_names(model: Any) -> bool:
    try:
        return getattr(model, "feature_names_in_", None) is not None
    except Exception:  # LightGBM raises AttributeError-like errors from a property when not fitted
        return False


def _require_lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise missing_dependency("lightgbm", "lightgbm", "the lightgbm flavor") from exc
    return lightgbm
