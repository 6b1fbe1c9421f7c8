"""Model versions: immutable records of an artifact with its contract, profile and lineage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.core.loss_model import LossModel
from shipyard.core.outlier_model import OutlierModel
from shipyard.core.profile import ReferenceProfile
from shipyard.core.signature import Signature
from shipyard.errors import ConflictError, PermissionDeniedError


class VersionStatus(StrEnum):
    """Lifecycle of a version; only the status and aliases change after registration."""

    REGISTERED = "registered"
    APPROVED = "approved"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """The code that registered the version: commit, dirty tree, repository root."""

    commit: str | None = None
    dirty: bool | None = None
    repository: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "dirty": self.dirty, "repository": self.repository}


@dataclass(frozen=True, slots=True)
class Approval:
    """Who approved a version for production, when, and the reason they gave (shown on the model card)."""

    by: str
    at: datetime
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "at": self.at.isoformat(), "reason": self.reason}


class ApprovalRequiredError(ConflictError):
    """An endpoint that requires approval was asked to serve, follow or roll out to an unapproved version."""

    code = "approval_required"


class FourEyesError(PermissionDeniedError):
    """The identity that registered a version tried to approve it while four-eyes approvals are on."""

    code = "four_eyes"


def check_four_eyes(version: ModelVersion, approver: str, *, approver_is_local: bool) -> None:
    """Refuse an approval by the identity that registered the version.

    The person at this machine (a local principal: the CLI on the store) is one user and exempt; anyone holding
    the store's credentials could change it directly anyway, and the audit trail records them either way.
    """
    if approver_is_local or version.registered_by is None or version.registered_by != approver:
        return
    raise FourEyesError(
        f"four-eyes rule: {approver} registered {version.ref} and cannot approve it too; another identity must "
        "(or turn the rule off with SHIPYARD_FOUR_EYES=false)"
    )


def check_approved(version: ModelVersion, *, endpoint: str, action: str) -> None:
    """The require-approval rule of an endpoint: ``action`` (serve, follow, roll out to) an approved version only."""
    if version.approved:
        return
    raise ApprovalRequiredError(
        f"approval rule: endpoint {endpoint!r} requires approved versions, and {version.ref} is "
        f"{version.status.value}; it cannot {action} it until someone runs `shipyard models approve {version.ref} "
        "--reason ...`"
    )


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version of a model; ``ref`` (``fraud:3``) names it everywhere."""

    name: str
    version: int
    sha256: str
    size_bytes: int
    flavor: str
    flavor_options: Mapping[str, Any]
    signature: Signature
    reference_profile: ReferenceProfile | None
    training_data_hash: str | None
    hyperparameters: Mapping[str, Any]
    code: CodeInfo
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    notes: str
    owner: str
    created_at: datetime
    parent_version: int | None
    status: VersionStatus
    source: str
    aliases: tuple[str, ...] = field(default=())
    input_example: tuple[Mapping[str, Any], ...] | None = None
    """A few sample rows as JSON objects: for warm-up, smoke tests, conversion checks and docs."""
    trusted: bool = False
    """The registering caller passed trusted=True: loading may run code, and servers load it only then."""
    confidence_calibrator: ConfidenceCalibrator | None = None
    """Fitted on labelled training data at registration; calibrates the label-free accuracy estimate."""
    registered_by: str | None = None
    """The audit label of who registered it (``key:ci``, ``token:alice``, an OS user): four-eyes compares it."""
    vouched_by: str | None = None
    """Who registered it with trusted=True, so vouched for the code loading it may run; None if nobody did."""
    approval: Approval | None = None
    """Who approved it for production, when and why; None until someone does."""
    outlier_model: OutlierModel | None = None
    """Fitted on the training rows at registration; scores each served row as an outlier. None without
    training data, or when registered with outlier_model="none"."""
    loss_model: LossModel | None = None
    """A regressor's per-row error model, fitted on labelled rows at registration (holdout rows when given);
    it estimates MAE and RMSE of served rows without labels (DLE). None without a training target."""

    @property
    def approved(self) -> bool:
        return self.status is VersionStatus.APPROVED

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def runs_code(self) -> bool:
        """Loading this version runs code someone wrote (a pyfunc's source, or a pickle)."""
        return self.flavor == "pyfunc" or self.flavor_options.get("format") == "pickle"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready model card, as ``shipyard models show --json`` prints it."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "status": self.status.value,
            "aliases": list(self.aliases),
            "flavor": self.flavor,
            "flavor_options": dict(self.flavor_options),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "signature": self.signature.to_dict(),
            "reference_profile": self.reference_profile.to_dict() if self.reference_profile else None,
            "training_data_hash": self.training_data_hash,
            "hyperparameters": dict(self.hyperparameters),
            "code": self.code.to_dict(),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "notes": self.notes,
            "owner": self.owner,
            "created_at": self.created_at.isoformat(),
            "parent_version": self.parent_version,
            "source": self.source,
            "input_example": [dict(r) for r in self.input_example] if self.input_example else None,
            "trusted": self.trusted,
            "runs_code": self.runs_code,
            "registered_by": self.registered_by,
            "vouched_by": self.vouched_by,
            "approval": self.approval.to_dict() if self.approval is not None else None,
            "confidence_calibrator": self.confidence_calibrator.to_dict() if self.confidence_calibrator else None,
            "outlier_model": self.outlier_model.to_dict() if self.outlier_model is not None else None,
            "loss_model": self.loss_model.to_dict() if self.loss_model is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """A model family at a glance, for listings."""

    name: str
    latest_version: int
    versions: int
    aliases: Mapping[str, int]
    created_at: datetime
    updated_at: datetime
