"""Artifacts in S3 (or an S3-compatible server) through fsspec/s3fs.

An S3 PUT, single or multipart, is atomic: the object appears whole at completion or not at all,
so the commit step that a local rename gives comes from the protocol itself, and no temporary
objects are ever left behind (an abandoned multipart upload is the bucket's lifecycle rules' to expire).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from shipyard.artifacts.base import BLOB_DIR, StoredObject, blob_key, is_digest, sha256_of, verify
from shipyard.errors import ArtifactNotFoundError, ConfigError, StoreError, missing_dependency


class S3ArtifactStore:
    """Blobs under ``s3://bucket/prefix/sha256/…``."""

    def __init__(self, uri: str, *, endpoint_url: str | None = None, **storage_options: Any) -> None:
        try:
            import s3fs
        except ImportError:
            raise missing_dependency("s3fs", "s3", f"artifact store {uri}") from None
        bucket_and_prefix = uri.split("://", 1)[1].strip("/")
        if not bucket_and_prefix:
            raise ConfigError(f"artifact store {uri!r} names no bucket; use s3://bucket/prefix")
        self.uri = uri.rstrip("/")
        self._base = bucket_and_prefix
        if endpoint_url:
            storage_options.setdefault("client_kwargs", {})["endpoint_url"] = endpoint_url
        storage_options.setdefault("use_listings_cache", False)
        self._fs = s3fs.S3FileSystem(**storage_options)

    def _key(self, sha256: str) -> str:
        return f"{self._base}/{blob_key(sha256)}"

    def location(self, sha256: str) -> str:
        return f"s3://{self._key(sha256)}"

    def exists(self, sha256: str) -> bool:
        try:
            return bool(self._fs.exists(self._key(sha256)))
        except Exception as exc:
            raise StoreError(f"cannot reach artifact store {self.uri}: {exc}") from exc

    def put(self, data: bytes) -> str:
        digest = sha256_of(data)
        key = self._key(digest)
        try:
            if not self._fs.exists(key):
                self._fs.pipe_file(key, data)
        except Exception as exc:
            raise StoreError(f"cannot write artifact to {self.location(digest)}: {exc}") from exc
        return digest

    def get(self, sha256: str, *, label: str) -> bytes:
        key = self._key(sha256)
        try:
            data = self._fs.cat_file(key)
        except FileNotFoundError:
            raise ArtifactNotFoundError(
                f"the artifact of {label} is missing: no object at {self.location(sha256)}"
            ) from None
        except Exception as exc:
            raise StoreError(f"cannot read the artifact of {label} from {self.location(sha256)}: {exc}") from exc
        return verify(data, sha256, label=label, location=self.location(sha256))

    def stored(self) -> Iterator[StoredObject]:
        """Every blob under ``prefix/sha256/`` (S3 keeps no temporary objects)."""
        top = f"{self._base}/{BLOB_DIR}"
        try:
            listing = self._fs.find(top, detail=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise StoreError(f"cannot list artifact store {self.uri}: {exc}") from exc
        for path, info in sorted(listing.items()):
            name = path.rsplit("/", 1)[-1]
            if not is_digest(name):
                continue
            yield StoredObject(
                key=path.removeprefix(f"{self._base}/"),
                sha256=name,
                size_bytes=int(info.get("size", 0)),
                modified_at=_utc(info.get("LastModified")),
            )

    def remove(self, item: StoredObject, *, unchanged_since: datetime) -> bool:
        path = f"{self._base}/{item.key}"
        try:
            if _utc(self._fs.info(path).get("LastModified")) > unchanged_since:
                return False
            self._fs.rm_file(path)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise StoreError(f"cannot remove s3://{path}: {exc}") from exc
        return True


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)  # unknown age: treated as new, so it is never removed
