"""API key repository: rows of ``api_keys`` to ``ApiKey`` records and back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from shipyard.core.identity import ApiKey, Role
from shipyard.errors import ConflictError
from shipyard.store.tables import api_keys


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _names(value: Any) -> frozenset[str] | None:
    return frozenset(value) if value is not None else None


def _to_key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        role=Role(row.role),
        endpoints=_names(row.endpoints),
        models=_names(row.models),
        salt=row.salt,
        secret_hash=row.secret_hash,
        created_by=row.created_by,
        created_at=_utc(row.created_at) or datetime.now(UTC),
        expires_at=_utc(row.expires_at),
        revoked_at=_utc(row.revoked_at),
    )


def insert(conn: Connection, key: ApiKey) -> None:
    try:
        with conn.begin_nested():
            conn.execute(
                sa.insert(api_keys).values(
                    key_id=key.key_id,
                    name=key.name,
                    role=key.role.value,
                    endpoints=sorted(key.endpoints) if key.endpoints is not None else None,
                    models=sorted(key.models) if key.models is not None else None,
                    salt=key.salt,
                    secret_hash=key.secret_hash,
                    created_by=key.created_by,
                    created_at=key.created_at,
                    expires_at=key.expires_at,
                )
            )
    except IntegrityError:
        raise ConflictError(f"a key named {key.name!r} already exists; revoke it or choose another name") from None


def list_all(conn: Connection) -> list[ApiKey]:
    return [_to_key(r) for r in conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.name))]


def get_by_name(conn: Connection, name: str) -> ApiKey | None:
    row = conn.execute(sa.select(api_keys).where(api_keys.c.name == name)).first()
    return _to_key(row) if row is not None else None


def revoke(conn: Connection, name: str, now: datetime) -> bool:
    result = conn.execute(
        sa.update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)


def any_exist(conn: Connection) -> bool:
    return conn.execute(sa.select(sa.func.count()).select_from(api_keys)).scalar_one() > 0
