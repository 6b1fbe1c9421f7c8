"""What a registration takes besides the model: one record that every way of registering builds.

``shipyard.register``, ``shipyard models register``, the MLflow import and conversion all hand the registry a
``RegistrationOptions``, so an option added or renamed in one place cannot go missing in another;
``tests/unit/services/test_registration.py`` holds the public ``shipyard.register`` to these fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.core.loss_model import LossModel
from shipyard.core.outlier_model import DEFAULT_OUTLIER_METHOD, OutlierModel, check_outlier_option
from shipyard.core.profile import ReferenceProfile
from shipyard.core.signature import Signature
from shipyard.core.versions import CodeInfo
from shipyard.errors import InvalidArgumentError

# Marks a field that ``shipyard.register`` does not take: what the CLI, the MLflow import and conversion
# carry over from an artifact or version that already exists (its signature, lineage, profile).
NOT_PUBLIC: Mapping[str, bool] = MappingProxyType({"public": False})


@dataclass(frozen=True, kw_only=True)
class RegistrationOptions:
    """Everything ``RegistryService.register`` takes besides the model; the public fields come first.

    Contradictory options are refused here, when the record is built, so a registration that cannot succeed
    does no work (no profile computed, nothing saved or stored).
    """

    name: str
    sample_input: Any = None
    training_data: Any = None
    training_target: Any = None
    calibration_data: Any = None
    calibration_target: Any = None
    metrics: Mapping[str, float] | None = None
    tags: Mapping[str, Any] | None = None
    notes: str = ""
    owner: str | None = None
    flavor: str | None = None
    sensitive_features: Sequence[str] = ()
    parent_version: int | None = None
    trusted: bool = False
    code_dir: str | Path | None = None
    outlier_model: str = DEFAULT_OUTLIER_METHOD
    """The novelty model fitted on training_data: "mahalanobis", "isolation_forest", or "none" for no scoring."""
    signature: Signature | None = field(default=None, metadata=NOT_PUBLIC)
    source: str | None = field(default=None, metadata=NOT_PUBLIC)
    """Where the model came from; None is "python", or "file:PATH" for ``register_file``."""
    code: CodeInfo | None = field(default=None, metadata=NOT_PUBLIC)
    extra_options: Mapping[str, Any] | None = field(default=None, metadata=NOT_PUBLIC)
    reference_profile: ReferenceProfile | None = field(default=None, metadata=NOT_PUBLIC)
    training_data_hash: str | None = field(default=None, metadata=NOT_PUBLIC)
    confidence_calibrator: ConfidenceCalibrator | None = field(default=None, metadata=NOT_PUBLIC)
    fitted_outlier_model: OutlierModel | None = field(default=None, metadata=NOT_PUBLIC)
    """An outlier model fitted before (conversion keeps the source version's)."""
    fitted_loss_model: LossModel | None = field(default=None, metadata=NOT_PUBLIC)
    """A regressor's loss model fitted before (conversion keeps the source version's)."""
    keep_signature_of: Signature | None = field(default=None, metadata=NOT_PUBLIC)
    """A retrained version's parent signature: registration is refused if callers would have to change."""

    def __post_init__(self) -> None:
        check_outlier_option(self.outlier_model)
        if self.outlier_model not in (DEFAULT_OUTLIER_METHOD, "none") and self.training_data is None:
            raise InvalidArgumentError(
                f"registering {self.name!r} with outlier_model={self.outlier_model!r} needs training_data to fit "
                "it on; pass the training rows, or leave outlier_model out (nothing was registered)"
            )
        if self.reference_profile is not None and self.training_data is not None:
            raise InvalidArgumentError(
                f"registering {self.name!r} was given both training_data and a precomputed reference_profile; "
                "give one: training_data to profile it now, or reference_profile to keep one computed before "
                "(nothing was registered)"
            )
