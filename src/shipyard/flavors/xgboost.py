"""XGBoost models, saved in XGBoost's own JSON format so any XGBoost can read them back without pickle.

The scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``, …) are rebuilt on load around the saved
booster, so ``predict`` and ``predict_proba`` go through the wrapper's own code and return exactly what
the original returned. A raw ``xgboost.Booster`` is called on a ``DMatrix``, as its users call it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.inputs import InputLayout
from shipyard.errors import ModelLoadError, UnsupportedModelError, missing_dependency
from shipyard.flavors.base import Predictor, SavedModel, jsonable_params, plain_classes, strings_as_categories

# The wrappers whose behaviour is fully described by the saved booster; a subclass is saved as the
# XGBoost class it derives from, since its own code is not part of the artifact.
WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor", "XGBRanker")
BOOSTER = "Booster"
FORMATS = ("json", "ubj")
# Wrapper parameters that change what ``predict`` returns yet are not stored in the booster itself.
_PREDICT_PARAMS = ("missing",)


class XGBoostPredictor:
    """Calls the rebuilt wrapper's methods, or the booster on a DMatrix, exactly as the original did."""

    def __init__(self, model: Any, *, layout: InputLayout) -> None:
        self.model = model
        self.layout = layout
        self.is_booster = _xgboost_base(type(model)) == BOOSTER
        booster = model if self.is_booster else model.get_booster()
        self._categorical = any(t == "c" for t in (booster.feature_types or ()))
        classes = None if self.is_booster else getattr(model, "classes_", None)
        self.classes: tuple[Any, ...] | None = plain_classes(classes)

    def predict(self, x: Any) -> np.ndarray:
        x = self._prepare(x)
        if self.is_booster:
            import xgboost

            return self.model.predict(xgboost.DMatrix(x, enable_categorical=self._categorical))
        return self.model.predict(x)

    def predict_proba(self, x: Any) -> np.ndarray | None:
        if self.classes is None:
            return None
        return self.model.predict_proba(self._prepare(x))

    def _prepare(self, x: Any) -> Any:
        return strings_as_categories(x) if self._categorical else x


class XGBoostFlavor:
    """``XGBClassifier`` / ``XGBRegressor`` (and the other scikit-learn wrappers) and ``xgboost.Booster``."""

    name = "xgboost"

    def handles(self, model: Any) -> bool:
        return _xgboost_base(type(model)) is not None

    def save(self, model: Any, *, trusted: bool = False) -> SavedModel:
        _require_xgboost()
        wrapper = _xgboost_base(type(model))
        if wrapper is None or (wrapper != BOOSTER and wrapper not in WRAPPERS):
            raise UnsupportedModelError(
                f"cannot save {type(model).__name__} with the xgboost flavor; it saves an xgboost.Booster or "
                f"one of {', '.join(WRAPPERS)}"
            )
        booster = model if wrapper == BOOSTER else _fitted_booster(model)
        names = booster.feature_names
        if wrapper != BOOSTER and getattr(model, "feature_names_in_", None) is None:
            names = None
        options: dict[str, Any] = {
            "format": "json",
            "wrapper": wrapper,
            "input": (InputLayout.FRAME if names else InputLayout.ARRAY).value,
        }
        if wrapper != BOOSTER:
            params = {k: getattr(model, k, None) for k in _PREDICT_PARAMS}
            plain = {k: v for k, v in params.items() if _is_plain(v)}
            if plain:
                options["params"] = plain
        return SavedModel(bytes(booster.save_raw("json")), options)

    def load(self, data: bytes, options: Mapping[str, Any], *, trusted: bool = False) -> Predictor:
        xgboost = _require_xgboost()
        wrapper = str(options.get("wrapper", BOOSTER))
        if wrapper != BOOSTER and wrapper not in WRAPPERS:
            raise ModelLoadError(
                f"unknown xgboost wrapper {wrapper!r} in the flavor options; expected {BOOSTER} or one of "
                f"{', '.join(WRAPPERS)}"
            )
        if not data:
            # XGBoost aborts the process (std::terminate) on an empty buffer instead of raising.
            raise ModelLoadError("the XGBoost model artifact is empty")
        model = xgboost.Booster() if wrapper == BOOSTER else getattr(xgboost, wrapper)(**options.get("params", {}))
        try:
            model.load_model(bytearray(data))
        except Exception as exc:  # XGBoostError, TypeError for a wrapper of another kind, …
            raise ModelLoadError(f"XGBoost could not read the model: {_first_line(exc)}") from exc
        layout = InputLayout(options.get("input", InputLayout.ARRAY.value))
        return XGBoostPredictor(model, layout=layout)

    def hyperparameters(self, model: Any) -> dict[str, Any]:
        if _xgboost_base(type(model)) != BOOSTER:
            try:
                return jsonable_params(model.get_params())
            except Exception:  # a subclass with a broken get_params still registers
                return {}
        try:
            config = json.loads(model.save_config())["learner"]
        except Exception:
            return {}
        params: dict[str, Any] = {
            "objective": config.get("objective", {}).get("name"),
            "booster": config.get("gradient_booster", {}).get("name"),
            "num_boosted_rounds": model.num_boosted_rounds(),
        }
        params.update(config.get("gradient_booster", {}).get("tree_train_param", {}))
        return jsonable_params(params)

    def feature_names(self, model: Any) -> tuple[str, ...] | None:
        if _xgboost_base(type(model)) == BOOSTER:
            names = model.feature_names
        else:
            names = getattr(model, "feature_names_in_", None)
        return tuple(str(n) for n in names) if names is not None else None

    def read_file(self, path: str, *, trusted: bool = False) -> Any:
        xgboost = _require_xgboost()
        file = Path(path)
        if file.is_file() and file.stat().st_size == 0:
            raise ModelLoadError(f"{file.name} is empty, not an XGBoost model")
        booster = xgboost.Booster()
        try:
            booster.load_model(str(file))
        except Exception as exc:
            raise ModelLoadError(f"XGBoost could not read {file.name}: {_first_line(exc)}") from exc
        # A wrapper's save_model() leaves its kind in the file; give back that wrapper, not a bare booster.
        meta = booster.attr("scikit_learn")
        kind = json.loads(meta).get("_estimator_type") if meta else None
        wrapper = {"classifier": "XGBClassifier", "regressor": "XGBRegressor", "ranker": "XGBRanker"}.get(kind or "")
        if wrapper is None:
            return booster
        model = getattr(xgboost, wrapper)()
        model.load_model(str(file))
        return model


def _xgboost_base(cls: type) -> str | None:
    """The name of the XGBoost class ``cls`` is or derives from, found without importing xgboost."""
    for klass in cls.__mro__:
        if klass.__module__.startswith("xgboost.") and klass.__name__ in (*WRAPPERS, BOOSTER):
            return klass.__name__
    for klass in cls.__mro__:
        if klass.__module__.startswith("xgboost.") and klass.__name__ == "XGBModel":
            return "XGBModel"
    return None


def _fitted_booster(model: Any) -> Any:
    try:
        return model.get_booster()
    except Exception as exc:  # sklearn's NotFittedError
        raise UnsupportedModelError(f"{type(model).__name__} is not fitted; call fit() before registering it") from exc


def _is_plain(value: Any) -> bool:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return math.isfinite(value)  # NaN is XGBoost's default and not valid JSON
    return isinstance(value, bool | int | str)


def _first_line(exc: BaseException) -> str:
    # XGBoost appends a native stack trace to its messages; the first line says what went wrong.
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _require_xgboost() -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise missing_dependency("xgboost", "xgboost", "the xgboost flavor") from exc
    return xgboost
