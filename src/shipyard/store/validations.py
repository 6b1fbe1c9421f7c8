"""Validation runs repository: each run's result stored as JSON beside the version it judged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.monitoring.validation_records import ValidationResult
from shipyard.store.tables import validations

MAX_LIST = 100
"""The most runs one listing returns (the newest)."""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _to_result(row: Any) -> ValidationResult:
    stored = ValidationResult.from_dict(row.result)
    return replace(stored, id=int(row.id), created_at=_utc(row.created_at), created_by=str(row.created_by))


def insert(
    conn: Connection, model: str, version: int, result: ValidationResult, *, created_by: str, now: datetime
) -> ValidationResult:
    """Store a run; the returned result carries its id, time and author."""
    body = result.to_dict()
    body.update(id=None, created_at=None, created_by=None)  # the row's own columns hold these
    row_id = conn.execute(
        sa.insert(validations)
        .values(
            model=model,
            version=version,
            passed=result.passed,
            champion=result.champion,
            result=body,
            created_by=created_by,
            created_at=now,
        )
        .returning(validations.c.id)
    ).scalar_one()
    return replace(result, id=int(row_id), created_at=now, created_by=created_by)


def for_version(conn: Connection, model: str, version: int, *, limit: int = MAX_LIST) -> list[ValidationResult]:
    """Newest first."""
    rows = conn.execute(
        sa.select(validations)
        .where(validations.c.model == model, validations.c.version == version)
        .order_by(validations.c.id.desc())
        .limit(limit)
    )
    return [_to_result(r) for r in rows]


def latest(conn: Connection, model: str, version: int, *, passed: bool | None = None) -> ValidationResult | None:
    """The newest run on a version (the newest passing one with ``passed=True``)."""
    query = sa.select(validations).where(validations.c.model == model, validations.c.version == version)
    if passed is not None:
        query = query.where(validations.c.passed == passed)
    row = conn.execute(query.order_by(validations.c.id.desc()).limit(1)).first()
    return _to_result(row) if row is not None else None
