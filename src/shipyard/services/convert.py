"""Convert scikit-learn models to ONNX, keeping the result only when it answers like the original."""

from __future__ import annotations

from typing import Any

import pandas as pd

from shipyard.core.inference import as_frame
from shipyard.core.versions import ModelVersion
from shipyard.errors import InvalidArgumentError, SignatureInferenceError, UnsupportedModelError
from shipyard.flavors.registry import detect_flavor
from shipyard.services.registry import RegistryService

SUPPORTED_TARGETS = ("onnx",)


def _check_target(to: str) -> None:
    if to not in SUPPORTED_TARGETS:
        raise InvalidArgumentError(f"converting to {to!r} is not supported; supported: {', '.join(SUPPORTED_TARGETS)}")


def convert_model(model: Any, *, to: str = "onnx", sample_input: Any) -> Any:
    """A live scikit-learn model to an ``onnx.ModelProto``, checked against the original on the sample."""
    from shipyard.flavors.onnx import to_onnx

    _check_target(to)
    if detect_flavor(model).name != "sklearn":
        raise UnsupportedModelError(f"only scikit-learn models can be converted to ONNX; got {type(model).__name__}")
    if sample_input is None:
        raise SignatureInferenceError("converting a model needs sample_input, to check the converted outputs")
    names = getattr(model, "feature_names_in_", None)
    frame = as_frame(sample_input, feature_names=[str(n) for n in names] if names is not None else None)
    all_numeric = all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes)
    return to_onnx(model, frame, feature_names=[str(c) for c in frame.columns], all_numeric=all_numeric)


def convert_version(registry: RegistryService, ref: str, *, to: str = "onnx", trusted: bool = False) -> ModelVersion:
    """Convert a registered scikit-learn version and register the result as the model's next version."""
    _check_target(to)
    source = registry.get(ref)
    if source.flavor != "sklearn":
        raise UnsupportedModelError(f"{source.ref} is a {source.flavor} model; only sklearn versions convert to ONNX")
    if not source.input_example:
        raise SignatureInferenceError(
            f"{source.ref} was registered without sample rows, so the converted model cannot be checked"
        )
    loaded = registry.load(source, trusted=trusted)
    model = loaded.predictor.model  # type: ignore[attr-defined]
    sample = pd.DataFrame.from_records(list(source.input_example), columns=list(source.signature.names))
    sample_for_model = sample if hasattr(model, "feature_names_in_") else sample.to_numpy(dtype=float)
    onnx_model = convert_model(model, to=to, sample_input=sample_for_model)
    return registry.register(
        onnx_model,
        name=source.name,
        sample_input=sample,
        signature=source.signature,
        metrics=source.metrics,
        tags={**source.tags, "converted_from": source.ref},
        notes=f"ONNX conversion of {source.ref}. {source.notes}".strip(),
        parent_version=source.version,
        source=f"convert:{source.ref}",
        reference_profile=source.reference_profile,
        training_data_hash=source.training_data_hash,
        code=source.code,
        confidence_calibrator=source.confidence_calibrator,  # the same probabilities, so the same calibration
        fitted_outlier_model=source.outlier_model,  # the same training rows, so the same novelty model
        fitted_loss_model=source.loss_model,  # the same predictions (checked at conversion), so the same errors
    )
