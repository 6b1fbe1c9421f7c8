"""API keys over HTTP, for admins: what ``shipyard keys`` does on a store, for a remote CLI.

The secret is in the answer to the create call only; the store keeps a salted hash. Every route here needs a
key that is not limited to some names, so a scoped admin key cannot mint itself an unscoped one.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.errors import InvalidArgumentError
from shipyard.rollouts.spec import parse_duration
from shipyard.services.keys import MAX_EXPIRY
from shipyard.serving.auth import actor_of
from shipyard.workspace import Workspace


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, examples=["ci"])
    role: str = Field(max_length=32, examples=["operator"], description="viewer, predictor, operator or admin")
    endpoints: list[str] | None = Field(None, description="limit the key to these endpoints")
    models: list[str] | None = Field(None, description="limit the key to these models")
    expires_in_s: str | float | None = Field(None, examples=["90d", 3600], description="lifetime; none: never")


def _lifetime(expires_in_s: str | float | None) -> timedelta | None:
    """A key's lifetime; one beyond what a timedelta holds is refused like any other out of range."""
    if expires_in_s is None:
        return None
    seconds = parse_duration(expires_in_s, option="expires_in_s")
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_EXPIRY.total_seconds():
        raise InvalidArgumentError(
            f"expires_in_s must be between 1 second and 10 years (e.g. 90d), got {str(expires_in_s)[:40]!r}"
        )
    return timedelta(seconds=seconds)


def keys_router(workspace: Workspace) -> APIRouter:
    """Sync handlers: FastAPI runs them in its thread pool."""
    router = APIRouter(prefix="/v1/keys", tags=["keys"])
    keys = workspace.keys

    @router.post("", status_code=201)
    def create_key(body: KeyCreate, request: Request) -> dict[str, Any]:
        """Create a key; ``secret`` in the answer is the only copy there will ever be."""
        lifetime = _lifetime(body.expires_in_s)
        key, secret = keys.create(
            body.name,
            role=body.role,
            endpoints=body.endpoints,
            models=body.models,
            expires_in=lifetime,
            actor=actor_of(request),
        )
        return {**key.to_dict(), "secret": secret}

    @router.get("")
    def list_keys() -> list[dict[str, Any]]:
        """Every key with its role, scope and state; never a secret or a hash."""
        return [k.to_dict() for k in keys.list()]

    @router.delete("/{name}")
    def revoke_key(name: str, request: Request) -> dict[str, Any]:
        """Revoke a key: every server refuses it within a poll interval."""
        return keys.revoke(name, actor=actor_of(request)).to_dict()

    return router
