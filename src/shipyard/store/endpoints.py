"""Endpoint repository."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from shipyard.core.endpoints import Endpoint
from shipyard.errors import ConflictError
from shipyard.store.tables import endpoints


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _to_endpoint(row: Any) -> Endpoint:
    return Endpoint(
        row.name,
        row.model_ref,
        bool(row.strict),
        _utc(row.created_at),
        _utc(row.updated_at),
        require_approval=bool(row.require_approval),
        require_validation=bool(row.require_validation),
    )


def create(conn: Connection, endpoint: Endpoint, now: datetime) -> Endpoint:
    try:
        with conn.begin_nested():
            conn.execute(
                sa.insert(endpoints).values(
                    name=endpoint.name,
                    model_ref=endpoint.model,
                    strict=endpoint.strict,
                    require_approval=endpoint.require_approval,
                    require_validation=endpoint.require_validation,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        raise ConflictError(
            f"endpoint {endpoint.name!r} already exists; point it elsewhere with `shipyard endpoints set`"
        ) from None
    return Endpoint(
        endpoint.name,
        endpoint.model,
        endpoint.strict,
        now,
        now,
        require_approval=endpoint.require_approval,
        require_validation=endpoint.require_validation,
    )


def get(conn: Connection, name: str) -> Endpoint | None:
    row = conn.execute(sa.select(endpoints).where(endpoints.c.name == name)).first()
    return _to_endpoint(row) if row is not None else None


def list_all(conn: Connection) -> list[Endpoint]:
    return [_to_endpoint(r) for r in conn.execute(sa.select(endpoints).order_by(endpoints.c.name))]


def update(
    conn: Connection,
    name: str,
    *,
    model: str,
    strict: bool,
    now: datetime,
    require_approval: bool | None = None,
    require_validation: bool | None = None,
) -> bool:
    """Point an endpoint elsewhere; ``require_approval`` / ``require_validation`` None keep the rule as it is."""
    values: dict[str, Any] = {"model_ref": model, "strict": strict, "updated_at": now}
    if require_approval is not None:
        values["require_approval"] = require_approval
    if require_validation is not None:
        values["require_validation"] = require_validation
    result = conn.execute(sa.update(endpoints).where(endpoints.c.name == name).values(**values))
    return bool(result.rowcount)


def delete(conn: Connection, name: str) -> bool:
    return bool(conn.execute(sa.delete(endpoints).where(endpoints.c.name == name)).rowcount)
