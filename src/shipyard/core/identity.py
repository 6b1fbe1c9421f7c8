"""Who is asking and what they may do: roles, the permissions they grant, and scopes on endpoints and models.

Pure and small on purpose: the server checks it on every request (from a cache, never the store), the
services record the principal in the audit trail, and the RBAC matrix test reads the same table.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shipyard.errors import InvalidArgumentError


class Role(StrEnum):
    """What a key or a token's group is for; ``admin`` holds every permission."""

    VIEWER = "viewer"
    PREDICTOR = "predictor"
    OPERATOR = "operator"
    ADMIN = "admin"

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.strip().lower())
        except ValueError:
            allowed = ", ".join(r.value for r in cls)
            raise InvalidArgumentError(f"unknown role {text!r}; use one of: {allowed}") from None


class Permission(StrEnum):
    """What a route needs. ``code`` is registering a model that runs its own Python (pyfunc, trusted pickle)."""

    READ = "read"
    PREDICT = "predict"
    OPERATE = "operate"
    ADMIN = "admin"
    CODE = "code"


GRANTS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.PREDICTOR: frozenset({Permission.PREDICT}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.ADMIN: frozenset(Permission),
}

# Key and scope names: what endpoint and model names allow, so a scope can never hold a path trick.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_scope_names(names: Iterable[str], what: str) -> frozenset[str]:
    """Scope entries are plain endpoint or model names: no wildcards, slashes or dots-only names."""
    checked = set()
    for name in names:
        if not isinstance(name, str) or not _NAME.match(name) or set(name) <= {"."}:
            raise InvalidArgumentError(
                f"{what} scope {name!r} is not a valid name (letters, digits, '.', '_' and '-', up to 128)"
            )
        checked.add(name)
    return frozenset(checked)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a key's name or a token's subject, its roles and optional scopes.

    ``endpoints``/``models`` of None mean "any"; a set limits every scoped permission to those names.
    """

    name: str
    kind: str  # "key", "token", "local" (embedded single-user mode) or "anonymous" (auth off)
    roles: frozenset[Role]
    endpoints: frozenset[str] | None = None
    models: frozenset[str] | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        granted: set[Permission] = set()
        for role in self.roles:
            granted |= GRANTS[role]
        return frozenset(granted)

    def allows(self, permission: Permission, *, endpoint: str | None = None, model: str | None = None) -> bool:
        """Whether this caller holds ``permission`` on the named endpoint or model (if any is named)."""
        if not any(permission in GRANTS[role] for role in self.roles):
            return False
        if endpoint is not None and self.endpoints is not None and endpoint not in self.endpoints:
            return False
        return not (model is not None and self.models is not None and model not in self.models)

    @property
    def label(self) -> str:
        """How the audit trail and logs name the caller: ``key:ci``, ``token:alice@example.com``, ``local``."""
        return self.name if self.kind in ("local", "anonymous") else f"{self.kind}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "roles": sorted(r.value for r in self.roles),
            "endpoints": sorted(self.endpoints) if self.endpoints is not None else None,
            "models": sorted(self.models) if self.models is not None else None,
        }


LOCAL = Principal("local", "local", frozenset({Role.ADMIN}))
"""The person at this machine: the CLI against the embedded store, or a server with auth off on loopback."""


# --- API keys -------------------------------------------------------------------------------------------------

KEY_PREFIX = "shy_"
_KEY = re.compile(r"^shy_([a-f0-9]{16})_([A-Za-z0-9_-]{43})$")
MAX_CREDENTIAL_CHARS = 8192
"""Longer Authorization values are refused before any parsing: no key is that long and a JWT rarely is."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: no secret, only a per-key salt and the SHA-256 of salt + secret.

    The secret is 256 random bits, so a fast hash is as strong as a slow one here (there is nothing to
    guess); the salt keeps two stores' hashes of one secret apart.
    """

    key_id: str
    name: str
    role: Role
    endpoints: frozenset[str] | None
    models: frozenset[str] | None
    salt: str
    secret_hash: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def matches(self, secret: str) -> bool:
        """Constant-time: how long the comparison takes says nothing about how much of the secret was right."""
        return hmac.compare_digest(hash_secret(self.salt, secret), self.secret_hash)

    def principal(self) -> Principal:
        return Principal(self.name, "key", frozenset({self.role}), self.endpoints, self.models)

    def to_dict(self) -> dict[str, Any]:
        """What ``keys list`` shows: never the salt or the hash."""
        return {
            "name": self.name,
            "key_id": self.key_id,
            "role": self.role.value,
            "endpoints": sorted(self.endpoints) if self.endpoints is not None else None,
            "models": sorted(self.models) if self.models is not None else None,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def new_key() -> tuple[str, str, str, str]:
    """A fresh key: (key_id, secret, salt, the full key to hand out once)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return key_id, secret, salt, f"{KEY_PREFIX}{key_id}_{secret}"


def split_key(token: str) -> tuple[str, str] | None:
    """``shy_<key_id>_<secret>`` to its parts; None for anything else (a JWT, a typo, another tool's key)."""
    found = _KEY.match(token)
    return (found.group(1), found.group(2)) if found else None


def check_key_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(f"key name {name!r} must be letters, digits, '.', '_' or '-' (up to 64)")
    if len(name) > 64:
        raise InvalidArgumentError(f"key name {name!r} is longer than 64 characters")
    return name


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is changing something, from where, in which request: what the audit trail records for a change."""

    principal: Principal
    address: str | None = None
    request_id: str | None = None


LOCAL_ACTOR = Actor(LOCAL)
"""The CLI against the embedded store: the operating-system user is the only one there."""
