"""The remote side of the CLI: a server's JSON turned back into the records the renderers print.

With SHIPYARD_URL set, ``models``, ``endpoints``, ``rollout``, ``keys`` and ``audit`` ask the server instead of
the store; the cards and tables they print are the same either way, built from the same records.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shipyard.core.audit import AuditEvent
from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.core.identity import ApiKey, Role
from shipyard.core.loss_model import LossModel
from shipyard.core.outlier_model import OutlierModel
from shipyard.core.signature import Signature
from shipyard.core.versions import Approval, CodeInfo, ModelSummary, ModelVersion, VersionStatus


def version_from_card(data: Mapping[str, Any]) -> ModelVersion:
    """A model card as the server sent it (reference profile left out) back into a ``ModelVersion``."""
    code = data.get("code") or {}
    approval = data.get("approval")
    calibrator = data.get("confidence_calibrator")
    outliers = data.get("outlier_model")
    loss_model = data.get("loss_model")
    return ModelVersion(
        name=data["name"],
        version=int(data["version"]),
        sha256=data["sha256"],
        size_bytes=int(data["size_bytes"]),
        flavor=data["flavor"],
        flavor_options=dict(data.get("flavor_options") or {}),
        signature=Signature.from_dict(data["signature"]),
        reference_profile=None,
        training_data_hash=data.get("training_data_hash"),
        hyperparameters=dict(data.get("hyperparameters") or {}),
        code=CodeInfo(code.get("commit"), code.get("dirty"), code.get("repository")),
        metrics=dict(data.get("metrics") or {}),
        tags=dict(data.get("tags") or {}),
        notes=data.get("notes") or "",
        owner=data.get("owner") or "",
        created_at=datetime.fromisoformat(data["created_at"]),
        parent_version=data.get("parent_version"),
        status=VersionStatus(data["status"]),
        source=data.get("source") or "",
        aliases=tuple(data.get("aliases") or ()),
        input_example=tuple(data["input_example"]) if data.get("input_example") else None,
        trusted=bool(data.get("trusted")),
        confidence_calibrator=ConfidenceCalibrator.from_dict(calibrator) if calibrator else None,
        registered_by=data.get("registered_by"),
        vouched_by=data.get("vouched_by"),
        approval=(
            Approval(approval["by"], datetime.fromisoformat(approval["at"]), approval.get("reason") or "")
            if approval
            else None
        ),
        outlier_model=OutlierModel.from_dict(outliers) if outliers else None,
        loss_model=LossModel.from_dict(loss_model) if loss_model else None,
    )


def summary_from_dict(data: Mapping[str, Any]) -> ModelSummary:
    return ModelSummary(
        name=data["name"],
        latest_version=int(data["latest_version"]),
        versions=int(data["versions"]),
        aliases={str(k): int(v) for k, v in (data.get("aliases") or {}).items()},
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
    )


def key_from_dict(data: Mapping[str, Any]) -> ApiKey:
    """A key as ``GET /v1/keys`` lists it (no salt, no hash: those never leave the server)."""

    def when(field: str) -> datetime | None:
        value = data.get(field)
        return datetime.fromisoformat(value) if value else None

    endpoints, models = data.get("endpoints"), data.get("models")
    return ApiKey(
        key_id=data["key_id"],
        name=data["name"],
        role=Role(data["role"]),
        endpoints=frozenset(endpoints) if endpoints is not None else None,
        models=frozenset(models) if models is not None else None,
        salt="",
        secret_hash="",
        created_by=data["created_by"],
        created_at=datetime.fromisoformat(data["created_at"]),
        expires_at=when("expires_at"),
        revoked_at=when("revoked_at"),
    )


def event_from_dict(data: Mapping[str, Any]) -> AuditEvent:
    """An audit event as ``GET /v1/audit`` lists it (its chain is checked by the server: ``audit verify``)."""
    return AuditEvent(
        at=datetime.fromisoformat(data["at"]),
        actor=data["actor"],
        action=data["action"],
        target=data["target"],
        address=data.get("address"),
        before=data.get("before"),
        after=data.get("after"),
        request_id=data.get("request_id"),
        hash=data.get("hash") or "",
        id=data.get("id"),
    )


def table_json(frame: Any) -> dict[str, Any]:
    """A DataFrame as the upload's metadata carries tables: column names and rows (NaN as null)."""
    import json

    data = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    return {"columns": [str(c) for c in data["columns"]], "data": data["data"]}
