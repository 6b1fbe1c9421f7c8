"""The Python API of PRODUCT.md: ``shipyard.register`` and ``shipyard.load``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shipyard.core.versions import ModelVersion
from shipyard.flavors.loaded import LoadedModel
from shipyard.services.registration import RegistrationOptions
from shipyard.workspace import default_workspace


def register(
    model: Any,
    name: str,
    *,
    sample_input: Any = None,
    training_data: Any = None,
    training_target: Any = None,
    calibration_data: Any = None,
    calibration_target: Any = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, Any] | None = None,
    notes: str = "",
    owner: str | None = None,
    flavor: str | None = None,
    sensitive_features: Sequence[str] = (),
    parent_version: int | None = None,
    trusted: bool = False,
    code_dir: str | Path | None = None,
    outlier_model: str = "mahalanobis",
) -> ModelVersion:
    """Register ``model`` as the next version of ``name``; hyperparameters, commit and data hash are captured.

    The commit is that of ``code_dir`` (default: the directory of the calling script). ``trusted=True``
    vouches for code that runs when the model loads (a pickle, a pyfunc's source): servers load it then.
    A classifier's label-free accuracy estimate is calibrated on ``calibration_data``/``calibration_target``
    (held-out rows: preferred) or else on ``training_data``/``training_target``. ``outlier_model`` is the novelty
    model fitted on ``training_data`` that scores every served row: "mahalanobis", "isolation_forest" or "none".

    The keywords are the public fields of ``RegistrationOptions``, spelled out for readers and IDEs; a test
    holds the two to the same names, types and defaults.
    """
    options = RegistrationOptions(
        name=name,
        sample_input=sample_input,
        training_data=training_data,
        training_target=training_target,
        calibration_data=calibration_data,
        calibration_target=calibration_target,
        metrics=metrics,
        tags=tags,
        notes=notes,
        owner=owner,
        flavor=flavor,
        sensitive_features=sensitive_features,
        parent_version=parent_version,
        trusted=trusted,
        code_dir=code_dir,
        outlier_model=outlier_model,
    )
    return default_workspace().registry.register(model, options)


def load(ref: str, *, trusted: bool | None = None) -> LoadedModel:
    """Load ``fraud:3``, ``fraud@champion`` or ``fraud`` (latest), its sha256 checked, ready to predict.

    Code loads when the version was registered trusted, or when this caller passes trusted=True.
    """
    return default_workspace().registry.load(ref, trusted=trusted)


def convert(ref_or_model: Any, to: str = "onnx", *, sample_input: Any = None, trusted: bool = False) -> Any:
    """Convert a scikit-learn model to ONNX, checking its outputs match the original's first.

    Given a ref (``"fraud:3"``) the converted model is registered as the model's next version and that
    ModelVersion returned; given a live model, the checked ``onnx.ModelProto`` is returned.
    """
    from shipyard.services.convert import convert_model, convert_version

    if isinstance(ref_or_model, str):
        return convert_version(default_workspace().registry, ref_or_model, to=to, trusted=trusted)
    return convert_model(ref_or_model, to=to, sample_input=sample_input)
