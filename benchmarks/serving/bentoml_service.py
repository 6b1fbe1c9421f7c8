"""The BentoML service: the same model behind ``POST /predict``, body ``{"instances": [row, ...]}``.

Uses the ``@bentoml.service`` API (BentoML 1.2+) when the installed version has it, else the legacy
``bentoml.Service`` with a runner. Serve: ``bentoml serve bentoml_service:svc``.
"""

from __future__ import annotations

import warnings
from typing import Any

import bentoml
import numpy as np

MODEL_TAG = "breast_cancer:latest"
# The model was fitted on a DataFrame; it is called with a bare array, as the Starlette app does.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


def _matrix(instances: list[dict[str, float]], features: list[str]) -> np.ndarray:
    return np.array([[row[f] for f in features] for row in instances], dtype=np.float64)


if hasattr(bentoml, "service"):

    @bentoml.service(workers=1)
    class BreastCancer:
        def __init__(self) -> None:
            self.model: Any = bentoml.sklearn.load_model(MODEL_TAG)
            self.features = [str(f) for f in self.model.feature_names_in_]

        @bentoml.api
        def predict(self, instances: list[dict[str, float]]) -> dict[str, Any]:
            x = _matrix(instances, self.features)
            proba = self.model.predict_proba(x)
            return {"predictions": self.model.predict(x).tolist(), "probabilities": proba.tolist()}

    svc = BreastCancer

else:  # BentoML 1.0 / 1.1
    from bentoml.io import JSON

    _model_ref = bentoml.sklearn.get(MODEL_TAG)
    _features = [str(f) for f in _model_ref.load_model().feature_names_in_]
    _runner = _model_ref.to_runner()
    svc = bentoml.Service("breast_cancer", runners=[_runner])

    @svc.api(input=JSON(), output=JSON())
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        x = _matrix(body["instances"], _features)
        return {
            "predictions": np.asarray(_runner.predict.run(x)).tolist(),
            "probabilities": np.asarray(_runner.predict_proba.run(x)).tolist(),
        }
