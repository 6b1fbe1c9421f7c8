"""The artifact-store seam and what every store shares: naming by sha256 and checking on read."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from shipyard.errors import ArtifactIntegrityError, InvalidArgumentError

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ArtifactStore(Protocol):
    """Blobs by sha256. ``put`` is atomic and idempotent; ``get`` returns only verified bytes."""

    uri: str

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256; storing the same bytes twice is a no-op."""
        ...

    def get(self, sha256: str, *, label: str) -> bytes:
        """The bytes named ``sha256``; ``label`` (e.g. ``fraud:3``) names the owner in errors."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def location(self, sha256: str) -> str:
        """Where the blob lives, for people and for audit records."""
        ...


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One thing under a store's ``sha256/`` tree: a blob, or a temporary file a crashed write left."""

    key: str
    """Where it is, relative to the store's root (``sha256/ab/abcdef…``)."""
    sha256: str | None
    """The blob's digest; None for a temporary file."""
    size_bytes: int
    modified_at: datetime
    """When it was last written (or, for a blob, last stored again), in UTC."""


@runtime_checkable
class SweepableStore(Protocol):
    """A store that can list what it holds and remove it: what ``shipyard gc`` needs."""

    uri: str

    def stored(self) -> Iterator[StoredObject]:
        """Every blob and leftover temporary file, in no particular order."""
        ...

    def remove(self, item: StoredObject, *, unchanged_since: datetime) -> bool:
        """Delete ``item`` unless it was written after ``unchanged_since`` (then keep it, return False)."""
        ...


BLOB_DIR = "sha256"
TEMPORARY_PREFIX = ".tmp-"


def sha256_of(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_key(sha256: str) -> str:
    """``sha256/ab/abcdef…``: two-level fan-out keeps directories small on local disks."""
    if not _DIGEST.match(sha256):
        raise InvalidArgumentError(f"not a sha256 digest: {sha256!r}")
    return f"{BLOB_DIR}/{sha256[:2]}/{sha256}"


def is_digest(name: str) -> bool:
    return bool(_DIGEST.match(name))


def verify(data: bytes, expected: str, *, label: str, location: str) -> bytes:
    actual = sha256_of(data)
    if actual != expected:
        raise ArtifactIntegrityError(
            f"the artifact of {label} is corrupt or was tampered with: expected sha256 {expected}, "
            f"found {actual} ({location})"
        )
    return data
