"""Registry changes over HTTP: register an uploaded model file, list versions, move aliases, archive.

What ``shipyard models register FILE`` does on a store, done for a remote CLI that holds no database
credentials: the file is streamed in (``serving.upload``), checked against the SHA-256 its sender named, and
registered by the same ``RegistryService.register_file``, with the caller recorded as who registered it.
Registering code (a pyfunc, a trusted pickle) needs the ``code`` permission, which only admins hold.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from shipyard.core.identity import Actor, Permission
from shipyard.core.refs import check_model_name
from shipyard.core.versions import CodeInfo, ModelVersion
from shipyard.errors import InvalidArgumentError, ModelNotFoundError, PermissionDeniedError
from shipyard.services.registration import RegistrationOptions
from shipyard.serving.auth import actor_of
from shipyard.serving.upload import (
    DIGEST_HEADER,
    FILE_PART,
    METADATA_PART,
    DigestMismatchError,
    expected_digest,
    receive_upload,
)
from shipyard.workspace import Workspace

MAX_NOTES_CHARS = 100_000


class TableBody(BaseModel):
    """Rows as pandas' ``split`` orientation without the index: column names, then one list per row."""

    model_config = ConfigDict(extra="forbid")

    columns: list[str]
    data: list[list[Any]]


class CodeBody(BaseModel):
    """The commit of the code that trained the model, as the sender's checkout says (the server has none)."""

    model_config = ConfigDict(extra="forbid")

    commit: str | None = Field(None, max_length=64)
    dirty: bool | None = None
    repository: str | None = Field(None, max_length=1000)


class RegistrationMetadata(BaseModel):
    """The ``metadata`` part of an upload: what ``shipyard models register`` takes besides the file."""

    model_config = ConfigDict(extra="forbid")

    flavor: str | None = Field(None, max_length=32, examples=["sklearn"])
    entry: str | None = Field(None, max_length=128, description="pyfunc: the class in the uploaded .py file")
    trusted: bool = Field(False, description="vouch for code that runs when loaded (needs the admin role)")
    sample_input: TableBody | None = None
    training_data: TableBody | None = None
    training_target: list[Any] | None = None
    calibration_data: TableBody | None = None
    calibration_target: list[Any] | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    notes: str = Field("", max_length=MAX_NOTES_CHARS)
    owner: str | None = Field(None, max_length=256)
    sensitive_features: list[str] = Field(default_factory=list)
    code: CodeBody | None = None
    outlier_model: str = Field("mahalanobis", max_length=32, examples=["mahalanobis", "isolation_forest", "none"])

    @property
    def runs_code(self) -> bool:
        """Whether registering this needs the code permission: it vouches for code, or it is a pyfunc."""
        return self.trusted or self.flavor == "pyfunc" or self.entry is not None

    def options(self, name: str, *, owner: str, source: str) -> RegistrationOptions:
        code = self.code
        return RegistrationOptions(
            name=name,
            flavor=self.flavor,
            trusted=self.trusted,
            sample_input=_frame(self.sample_input),
            training_data=_frame(self.training_data),
            training_target=_array(self.training_target),
            calibration_data=_frame(self.calibration_data),
            calibration_target=_array(self.calibration_target),
            metrics=self.metrics,
            tags=self.tags,
            notes=self.notes,
            owner=self.owner or owner,
            sensitive_features=tuple(self.sensitive_features),
            source=source,
            # never the server's own checkout: the sender's commit, or none
            code=CodeInfo(code.commit, code.dirty, code.repository) if code is not None else CodeInfo(),
            outlier_model=self.outlier_model,
        )


def parse_metadata(raw: bytes | None) -> RegistrationMetadata:
    if raw is None or not raw.strip():
        return RegistrationMetadata.model_validate({})
    try:
        return RegistrationMetadata.model_validate(json.loads(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValidationError):
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'metadata'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidArgumentError(f"upload {METADATA_PART!r} part: {problems}") from None
        raise InvalidArgumentError(f"upload {METADATA_PART!r} part is not JSON: {exc}") from None


def check_code_permission(actor: Actor, name: str, metadata: RegistrationMetadata) -> None:
    """Item 12 of the security model: only a caller holding ``code`` (admins) may register code a server will run."""
    if metadata.runs_code and not actor.principal.allows(Permission.CODE, model=name):
        raise PermissionDeniedError(
            f"{actor.principal.label} may not register code on model {name!r} (a pyfunc or trusted=true: loading "
            "it runs code): needs code, which only the admin role holds"
        )


def _frame(table: TableBody | None) -> Any:
    if table is None:
        return None
    import pandas as pd

    if any(len(row) != len(table.columns) for row in table.data):
        raise InvalidArgumentError(f"a table in the upload has rows that are not {len(table.columns)} values long")
    return pd.DataFrame(table.data, columns=table.columns)


def _array(values: list[Any] | None) -> Any:
    if values is None:
        return None
    import numpy as np

    return np.asarray(values)


def card(version: ModelVersion) -> dict[str, Any]:
    """A version's card as routes return it: the reference profile (large, and in the store) left out."""
    out = version.to_dict()
    out.pop("reference_profile", None)
    return out


UPLOAD_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": DIGEST_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "description": "The SHA-256 of the model file, in hex; a mismatch is refused (422) and nothing stored",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_PART],
                    "properties": {
                        FILE_PART: {"type": "string", "format": "binary", "description": "The model file"},
                        METADATA_PART: {
                            "type": "string",
                            "description": "JSON: flavor, trusted, metrics, tags, notes, owner, sample_input, ...",
                        },
                    },
                }
            }
        },
    },
}


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, examples=[3])


def registry_router(workspace: Workspace, *, max_upload_bytes: int) -> APIRouter:
    """Sync handlers but the upload: it streams on the event loop and registers on a worker thread."""
    router = APIRouter(prefix="/v1/models", tags=["admin"])
    registry = workspace.registry

    @router.post(
        "/{name}/versions",
        status_code=201,
        openapi_extra=UPLOAD_OPENAPI,
        responses={
            403: {"description": "Registering code without the admin role"},
            413: {"description": "The upload is over SHIPYARD_MAX_UPLOAD_BYTES"},
            422: {"description": "The SHA-256 does not match, or the model or its metadata is refused"},
        },
    )
    async def register_upload(name: str, request: Request) -> dict[str, Any]:
        """Register an uploaded model file as the next version of ``name``; nothing is stored unless all checks pass."""
        check_model_name(name)
        actor = actor_of(request)
        expected = expected_digest(request.headers.get(DIGEST_HEADER))
        seen: list[RegistrationMetadata] = []

        def on_metadata(raw: bytes) -> None:
            metadata = parse_metadata(raw)
            check_code_permission(actor, name, metadata)
            seen.append(metadata)

        with tempfile.TemporaryDirectory(prefix="shipyard-upload-") as directory:
            upload = await receive_upload(request, Path(directory), max_bytes=max_upload_bytes, on_metadata=on_metadata)
            if upload.sha256 != expected:
                raise DigestMismatchError(
                    f"the uploaded file hashes to sha256 {upload.sha256}, not the {expected} named in "
                    f"{DIGEST_HEADER} ({upload.size_bytes} bytes arrived); nothing was stored"
                )
            metadata = seen[0] if seen else parse_metadata(None)
            check_code_permission(actor, name, metadata)
            options = metadata.options(name, owner=actor.principal.name, source=f"upload:{upload.filename}")
            path = f"{upload.path}:{metadata.entry}" if metadata.entry else str(upload.path)
            version = await run_in_threadpool(registry.register_file, path, options, actor=actor)
        return card(version)

    @router.get("/{name}/versions")
    def list_versions(name: str) -> list[dict[str, Any]]:
        """Every version of a model, oldest first, without reference profiles."""
        versions = registry.list_versions(name)
        if not versions:
            raise ModelNotFoundError(f"no model named {name!r}; GET /v1/models lists the registered models")
        return [card(v) for v in versions]

    @router.put("/{name}/aliases/{alias}")
    def set_alias(name: str, alias: str, body: AliasBody, request: Request) -> dict[str, Any]:
        """Point ``name@alias`` at a version, atomically; endpoints following the alias move with it."""
        return card(registry.set_alias(f"{name}:{body.version}", alias, actor=actor_of(request)))

    @router.delete("/{name}/aliases/{alias}", status_code=204)
    def delete_alias(name: str, alias: str, request: Request) -> None:
        registry.remove_alias(name, alias, actor=actor_of(request))

    @router.post("/{ref}/archive")
    def archive(ref: str, request: Request) -> dict[str, Any]:
        """Archive a version (refused while an alias points at it)."""
        return card(registry.archive(ref, actor=actor_of(request)))

    return router
