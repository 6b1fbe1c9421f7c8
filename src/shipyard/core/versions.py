"""Model versions: immutable records of an artifact with its contract, profile and lineage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.core.profile import ReferenceProfile
from shipyard.core.signature import Signature


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
            "confidence_calibrator": self.confidence_calibrator.to_dict() if self.confidence_calibrator else None,
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
