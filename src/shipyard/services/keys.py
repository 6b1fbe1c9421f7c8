"""API key use cases: create (the secret is returned once), list (never a secret), revoke, and the key ring."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from shipyard.core.identity import (
    LOCAL_ACTOR,
    Actor,
    ApiKey,
    Role,
    check_key_name,
    check_scope_names,
    hash_secret,
    new_key,
)
from shipyard.errors import InvalidArgumentError, NotFoundError
from shipyard.services.audit import record
from shipyard.store import keys as repo
from shipyard.store.db import Database

MAX_EXPIRY = timedelta(days=3650)


class KeyService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        *,
        role: Role | str,
        endpoints: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        expires_in: timedelta | None = None,
        actor: Actor = LOCAL_ACTOR,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret, which is not stored and cannot be shown again."""
        check_key_name(name)
        parsed = role if isinstance(role, Role) else Role.parse(role)
        if expires_in is not None and not timedelta(0) < expires_in <= MAX_EXPIRY:
            raise InvalidArgumentError(f"a key's lifetime must be between 1 second and 10 years, got {expires_in}")
        now = datetime.now(UTC)
        key_id, secret, salt, full = new_key()
        key = ApiKey(
            key_id=key_id,
            name=name,
            role=parsed,
            endpoints=check_scope_names(endpoints, "endpoint") if endpoints is not None else None,
            models=check_scope_names(models, "model") if models is not None else None,
            salt=salt,
            secret_hash=hash_secret(salt, secret),
            created_by=actor.principal.label,
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
        )
        with self.db.write() as conn:
            repo.insert(conn, key)
            record(conn, actor, "key.create", f"key:{name}", after=key.to_dict(), at=now)
        return key, full

    def list(self) -> list[ApiKey]:
        with self.db.read() as conn:
            return repo.list_all(conn)

    def revoke(self, name: str, *, actor: Actor = LOCAL_ACTOR) -> ApiKey:
        now = datetime.now(UTC)
        with self.db.write() as conn:
            key = repo.get_by_name(conn, name)
            if key is None:
                raise NotFoundError(f"no key named {name!r}; `shipyard keys list` shows the keys")
            if key.revoked_at is None:
                repo.revoke(conn, name, now)
                record(conn, actor, "key.revoke", f"key:{name}", before=key.to_dict(), at=now)
            revoked = repo.get_by_name(conn, name)
        if revoked is None:  # deleted between the two reads: only a hand-edited store does that
            raise NotFoundError(f"key {name!r} disappeared while it was being revoked")
        return revoked

    def ring(self) -> dict[str, ApiKey]:
        """Every key by its public id, revoked and expired ones included (so they are refused by name)."""
        with self.db.read() as conn:
            return {k.key_id: k for k in repo.list_all(conn)}
