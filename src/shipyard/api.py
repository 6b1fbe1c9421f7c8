"""The Python API of PRODUCT.md: ``shipyard.register``, ``shipyard.load`` and ``shipyard.compare``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.versions import ModelVersion
from shipyard.flavors.loaded import LoadedModel
from shipyard.services.registration import RegistrationOptions
from shipyard.workspace import default_workspace

if TYPE_CHECKING:
    from shipyard.monitoring.validation_records import ValidationResult
    from shipyard.reporting.comparison import Comparison


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


def compare(
    reference: Any,
    current: Any,
    *,
    target: str | None = None,
    prediction: str | None = None,
    multivariate: bool = True,
    chunk_rows: int = 131_072,
) -> Comparison:
    """Compare ``current`` with ``reference`` (CSV or Parquet paths, or DataFrames; a file is streamed in chunks):
    drift, data quality and, with ``target`` and ``prediction`` columns, performance, as the live report has
    them. ``reference`` may also be a registered version (``"fraud:3"``, ``"fraud@champion"``, or a
    ``ModelVersion``): its reference profile is the reference and its signature decides the types.

    Returns a ``Comparison``: ``.drift``, ``.quality``, ``.performance``, ``.summary()``, ``.to_dict()``,
    ``.save_html(path)``.
    """
    from shipyard.reporting.comparison import Comparison
    from shipyard.services.compare import compare as compare_data
    from shipyard.services.compare import compare_with_version

    version = _registered(reference)
    if version is not None:
        report = compare_with_version(version, current, target=target, prediction=prediction, chunk_rows=chunk_rows)
    else:
        report = compare_data(
            reference,
            current,
            target=target,
            prediction=prediction,
            multivariate=multivariate,
            chunk_rows=chunk_rows,
        )
    return Comparison(report)


def validate(
    ref: str,
    data: Any,
    target: str,
    *,
    vs: str | None = None,
    minimum: Mapping[str, float] | None = None,
    maximum: Mapping[str, float] | None = None,
    max_regression: float | None = None,
    max_fairness_gap: float | None = None,
    max_drift: float | None = None,
) -> ValidationResult:
    """Validation gates, as ``shipyard validate`` runs them: score the holdout ``data`` (a CSV or Parquet path, or
    a DataFrame) with ``ref`` (and the champion ``vs``: a ref, an alias or an endpoint), judge the gates and store
    the result on the version. ``minimum={"accuracy": 0.9}``, ``maximum={"p99_ms": 20}``.

    Returns a ``ValidationResult``: ``.passed``, ``.gates``, ``.figures``, ``.summary()``, ``.to_dict()``.
    """
    from shipyard.monitoring.validation_gates import GateSpec

    gates = GateSpec.parse(
        minimum=[f"{k}={v}" for k, v in (minimum or {}).items()],
        maximum=[f"{k}={v}" for k, v in (maximum or {}).items()],
        max_regression=max_regression,
        max_fairness_gap=max_fairness_gap,
        max_drift=max_drift,
    )
    return default_workspace().validation.validate(ref, data, target, champion=vs, gates=gates)


def _registered(reference: Any) -> ModelVersion | None:
    """A version when ``reference`` names one (``name:3``, ``name@alias``) rather than a file; else None."""
    if isinstance(reference, ModelVersion):
        return reference
    if not isinstance(reference, str) or Path(reference).suffix.lower() in (".csv", ".parquet", ".pq"):
        return None
    if Path(reference).exists() or (":" not in reference and "@" not in reference):
        return None
    return default_workspace().registry.get(reference)
