"""Which artifact store a URI names. Kept apart from the port (``base``) so no store module imports its caller."""

from __future__ import annotations

from shipyard.artifacts.base import ArtifactStore
from shipyard.artifacts.local import LocalArtifactStore
from shipyard.errors import ConfigError


def open_artifact_store(uri: str, *, s3_endpoint_url: str | None = None) -> ArtifactStore:
    """The store for ``SHIPYARD_ARTIFACT_URI``: a local path (or file://) or s3://bucket/prefix."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    if scheme == "file":
        return LocalArtifactStore(uri.removeprefix("file://"))
    if scheme == "s3":
        from shipyard.artifacts.s3 import S3ArtifactStore  # s3fs is an extra: imported only when named

        return S3ArtifactStore(uri, endpoint_url=s3_endpoint_url)
    raise ConfigError(
        f"artifact store {uri!r} is not supported: scheme {scheme!r}; use a local path or s3://bucket/prefix"
    )
