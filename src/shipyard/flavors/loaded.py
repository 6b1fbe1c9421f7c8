"""A loaded model version: input checked against its signature, then the flavor's predictor called."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.core.inputs import InputAdapter, InputLayout
from shipyard.core.versions import ModelVersion
from shipyard.errors import InvalidArgumentError, PredictionError, ShipyardError
from shipyard.flavors.base import Predictor, layout_option


@dataclass(frozen=True, slots=True)
class Prediction:
    """One batch's outputs: predictions, and for classifiers probabilities with their class labels."""

    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    classes: tuple[Any, ...] | None = None


class LoadedModel:
    """What ``shipyard.load`` returns; ``predict`` returns exactly what the original model returns."""

    def __init__(self, version: ModelVersion, predictor: Predictor, *, strict: bool = False) -> None:
        self.version = version
        self.signature = version.signature
        self.predictor = predictor
        self.strict = strict
        self.classes = predictor.classes
        self._adapt = InputAdapter(
            version.signature, layout=layout_option(version.flavor_options), label=version.ref, strict=strict
        )
        self._predict = predictor.predict
        self._proba = predictor.predict_proba
        # Labels and probabilities from one model call, where the flavor knows that is exact.
        self._both = getattr(predictor, "predict_with_proba", None)

    @property
    def ref(self) -> str:
        return self.version.ref

    def __repr__(self) -> str:
        return f"LoadedModel({self.version.ref}, flavor={self.version.flavor!r})"

    def prepare(self, data: Any) -> Any:
        """Check ``data`` against the signature and shape it for the model (raises SignatureError)."""
        return self._adapt(data)

    def predict(self, data: Any) -> np.ndarray:
        x = self._adapt(data)
        try:
            return self._predict(x)
        except Exception as exc:
            raise PredictionError(f"{self.version.ref} raised {type(exc).__name__}: {exc}") from exc

    def predict_proba(self, data: Any) -> np.ndarray:
        if self.classes is None:
            raise InvalidArgumentError(f"{self.version.ref} is not a classifier; it has no class probabilities")
        x = self._adapt(data)
        try:
            proba = self._proba(x)
        except Exception as exc:
            raise PredictionError(f"{self.version.ref} raised {type(exc).__name__}: {exc}") from exc
        if proba is None:
            raise InvalidArgumentError(f"{self.version.ref} does not give class probabilities")
        return proba

    def prefer_array_layout(self, rows: Any) -> bool:
        """Switch an all-numeric model fitted on a DataFrame to matrix input when it answers identically.

        Building a DataFrame per request costs far more than the prediction for small models. Called by
        the server once at load time, on warm-up rows; the SDK keeps the exact original call.
        """
        if self._adapt.layout is InputLayout.ARRAY or not all(f.type.is_numeric for f in self.signature.features):
            return False
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        array_adapter = InputAdapter(
            self.signature, layout=InputLayout.ARRAY, label=self.version.ref, strict=self.strict
        )
        try:
            as_frame = self.call(self._adapt(rows))
            as_array = self.call(array_adapter(rows))
        except ShipyardError:
            return False
        same = np.array_equal(as_frame.predictions, as_array.predictions) and (
            (as_frame.probabilities is None and as_array.probabilities is None)
            or (
                as_frame.probabilities is not None
                and as_array.probabilities is not None
                # Same numbers summed in another memory order may differ in the last bit (1e-15).
                and np.allclose(as_frame.probabilities, as_array.probabilities, rtol=1e-9, atol=1e-12)
            )
        )
        if same:
            self._adapt = array_adapter
        return same

    def predict_batch(self, data: Any) -> Prediction:
        """Predictions plus, for classifiers, probabilities: one validation for both calls."""
        return self.call(self._adapt(data))

    def call(self, x: Any) -> Prediction:
        """Predict on input already checked and shaped by ``prepare``."""
        try:
            if self._both is not None:
                predictions, proba = self._both(x)
                return Prediction(predictions, proba, self.classes)
            predictions = self._predict(x)
            proba = self._proba(x) if self.classes is not None else None
        except Exception as exc:
            raise PredictionError(f"{self.version.ref} raised {type(exc).__name__}: {exc}") from exc
        return Prediction(np.asarray(predictions), None if proba is None else np.asarray(proba), self.classes)
