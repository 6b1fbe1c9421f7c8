"""Registry repository: rows of models, versions and aliases to and from domain objects."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from shipyard.core.calibrator import ConfidenceCalibrator
from shipyard.core.loss_model import LossModel
from shipyard.core.outlier_model import OutlierModel
from shipyard.core.profile import ReferenceProfile
from shipyard.core.signature import Signature
from shipyard.core.versions import Approval, CodeInfo, ModelSummary, ModelVersion, VersionStatus
from shipyard.store.tables import model_aliases, model_versions, models


def _insert(conn: Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp Shipyard writes is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def model_id(conn: Connection, name: str) -> int | None:
    return conn.execute(sa.select(models.c.id).where(models.c.name == name)).scalar_one_or_none()


def allocate_version(conn: Connection, name: str, now: datetime) -> tuple[int, int]:
    """Create the model if new and take its next version number, under the model row's lock.

    Called inside ``Database.write()``: the increment and the version insert commit together, so a
    failed registration gives its number back and no two processes ever get the same one.
    """
    conn.execute(
        _insert(conn, models)
        .values(name=name, latest_version=0, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    row = conn.execute(
        sa.update(models)
        .where(models.c.name == name)
        .values(latest_version=models.c.latest_version + 1, updated_at=now)
        .returning(models.c.id, models.c.latest_version)
    ).one()
    return int(row.id), int(row.latest_version)


def insert_version(conn: Connection, mid: int, version: ModelVersion) -> None:
    conn.execute(
        sa.insert(model_versions).values(
            model_id=mid,
            version=version.version,
            sha256=version.sha256,
            size_bytes=version.size_bytes,
            flavor=version.flavor,
            flavor_options=dict(version.flavor_options),
            signature=version.signature.to_dict(),
            reference_profile=version.reference_profile.to_dict() if version.reference_profile else None,
            input_example=[dict(r) for r in version.input_example] if version.input_example else None,
            training_data_hash=version.training_data_hash,
            hyperparameters=dict(version.hyperparameters),
            code_commit=version.code.commit,
            code_dirty=version.code.dirty,
            code_repository=version.code.repository,
            metrics=dict(version.metrics),
            tags=dict(version.tags),
            notes=version.notes,
            owner=version.owner,
            created_at=version.created_at,
            parent_version=version.parent_version,
            status=version.status.value,
            source=version.source,
            trusted=version.trusted,
            confidence_calibrator=(
                version.confidence_calibrator.to_dict() if version.confidence_calibrator is not None else None
            ),
            registered_by=version.registered_by,
            vouched_by=version.vouched_by,
            outlier_model=version.outlier_model.to_dict() if version.outlier_model is not None else None,
            loss_model=version.loss_model.to_dict() if version.loss_model is not None else None,
        )
    )


def get_version(conn: Connection, name: str, version: int) -> ModelVersion | None:
    row = conn.execute(_version_query().where(models.c.name == name, model_versions.c.version == version)).first()
    return _to_version(row, aliases_of(conn, name, version)) if row is not None else None


def latest_active_version(conn: Connection, name: str) -> int | None:
    """The newest version that is not archived: what a bare ``fraud`` means."""
    return conn.execute(
        sa.select(sa.func.max(model_versions.c.version))
        .join(models, models.c.id == model_versions.c.model_id)
        .where(models.c.name == name, model_versions.c.status != VersionStatus.ARCHIVED.value)
    ).scalar_one_or_none()


def alias_target(conn: Connection, name: str, alias: str) -> int | None:
    return conn.execute(
        sa.select(model_aliases.c.version)
        .join(models, models.c.id == model_aliases.c.model_id)
        .where(models.c.name == name, model_aliases.c.alias == alias)
    ).scalar_one_or_none()


def aliases_of(conn: Connection, name: str, version: int | None = None) -> dict[str, int]:
    query = (
        sa.select(model_aliases.c.alias, model_aliases.c.version)
        .join(models, models.c.id == model_aliases.c.model_id)
        .where(models.c.name == name)
        .order_by(model_aliases.c.alias)
    )
    if version is not None:
        query = query.where(model_aliases.c.version == version)
    return {row.alias: int(row.version) for row in conn.execute(query)}


def set_alias(conn: Connection, mid: int, alias: str, version: int, now: datetime) -> int | None:
    """Point ``alias`` at ``version`` in one statement (so it moves atomically); returns the old target."""
    previous = conn.execute(
        sa.select(model_aliases.c.version).where(model_aliases.c.model_id == mid, model_aliases.c.alias == alias)
    ).scalar_one_or_none()
    stmt = _insert(conn, model_aliases).values(model_id=mid, alias=alias, version=version, updated_at=now)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["model_id", "alias"], set_={"version": version, "updated_at": now})
    )
    return previous


def delete_alias(conn: Connection, mid: int, alias: str) -> bool:
    result = conn.execute(
        sa.delete(model_aliases).where(model_aliases.c.model_id == mid, model_aliases.c.alias == alias)
    )
    return bool(result.rowcount)


def set_status(conn: Connection, mid: int, version: int, status: VersionStatus) -> None:
    conn.execute(
        sa.update(model_versions)
        .where(model_versions.c.model_id == mid, model_versions.c.version == version)
        .values(status=status.value)
    )


def approve(conn: Connection, mid: int, version: int, approval: Approval) -> None:
    """Mark a version approved, recording who approved it, when and why (the status and the record together)."""
    conn.execute(
        sa.update(model_versions)
        .where(model_versions.c.model_id == mid, model_versions.c.version == version)
        .values(
            status=VersionStatus.APPROVED.value,
            approved_by=approval.by,
            approved_at=approval.at,
            approval_reason=approval.reason,
        )
    )


def list_versions(conn: Connection, name: str) -> list[ModelVersion]:
    aliases = aliases_of(conn, name)
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    rows = conn.execute(_version_query().where(models.c.name == name).order_by(model_versions.c.version))
    return [_to_version(row, by_version.get(int(row.version), [])) for row in rows]


def refs_with_sha256(conn: Connection, sha256: str) -> list[str]:
    """``name:version`` of every version whose artifact is ``sha256``, oldest first."""
    rows = conn.execute(
        sa.select(models.c.name, model_versions.c.version)
        .join(models, models.c.id == model_versions.c.model_id)
        .where(model_versions.c.sha256 == sha256)
        .order_by(models.c.name, model_versions.c.version)
    )
    return [f"{row.name}:{row.version}" for row in rows]


def referenced_sha256s(conn: Connection) -> set[str]:
    """Every artifact some version names, archived ones included (they still load)."""
    return set(conn.execute(sa.select(model_versions.c.sha256).distinct()).scalars())


def list_models(conn: Connection) -> list[ModelSummary]:
    counts = (
        sa.select(model_versions.c.model_id, sa.func.count().label("n")).group_by(model_versions.c.model_id).subquery()
    )
    rows = conn.execute(
        sa.select(models, counts.c.n)
        .join(counts, counts.c.model_id == models.c.id, isouter=True)
        .order_by(models.c.name)
    ).all()
    alias_rows = conn.execute(sa.select(model_aliases)).all()
    aliases: dict[int, dict[str, int]] = {}
    for a in alias_rows:
        aliases.setdefault(int(a.model_id), {})[a.alias] = int(a.version)
    return [
        ModelSummary(
            name=row.name,
            latest_version=int(row.latest_version),
            versions=int(row.n or 0),
            aliases=aliases.get(int(row.id), {}),
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
        )
        for row in rows
        if row.n
    ]


def _version_query() -> sa.Select[Any]:
    return sa.select(models.c.name, model_versions).join(models, models.c.id == model_versions.c.model_id)


def _to_version(row: Row[Any], aliases: Any) -> ModelVersion:
    profile: Mapping[str, Any] | None = row.reference_profile
    return ModelVersion(
        name=row.name,
        version=int(row.version),
        sha256=row.sha256,
        size_bytes=int(row.size_bytes),
        flavor=row.flavor,
        flavor_options=dict(row.flavor_options),
        signature=Signature.from_dict(row.signature),
        reference_profile=ReferenceProfile.from_dict(profile) if profile else None,
        training_data_hash=row.training_data_hash,
        hyperparameters=dict(row.hyperparameters),
        code=CodeInfo(row.code_commit, row.code_dirty, row.code_repository),
        metrics=dict(row.metrics),
        tags=dict(row.tags),
        notes=row.notes,
        owner=row.owner,
        created_at=_utc(row.created_at),
        parent_version=row.parent_version,
        status=VersionStatus(row.status),
        source=row.source,
        aliases=tuple(sorted(aliases)),
        input_example=tuple(row.input_example) if row.input_example else None,
        trusted=bool(row.trusted),
        confidence_calibrator=(
            ConfidenceCalibrator.from_dict(row.confidence_calibrator) if row.confidence_calibrator else None
        ),
        registered_by=row.registered_by,
        vouched_by=row.vouched_by,
        approval=(
            Approval(row.approved_by, _utc(row.approved_at), row.approval_reason or "")
            if row.approved_by is not None and row.approved_at is not None
            else None
        ),
        outlier_model=OutlierModel.from_dict(row.outlier_model) if row.outlier_model else None,
        loss_model=LossModel.from_dict(row.loss_model) if row.loss_model else None,
    )
