"""Garbage collection of the artifact store: blobs no version names, and temporary files of crashed writes.

A registration writes its blob first and records the version after, so a registration killed in
between leaves a blob nothing refers to (never a visible version); one killed mid-write leaves a
temporary file. Only leftovers older than ``min_age_s`` are collected, so a registration still in
progress is never broken; and a blob stored again after it was listed (a re-registration of the same
model) is kept, because storing it again marks it fresh and removal re-checks that just before deleting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shipyard.artifacts.base import ArtifactStore, StoredObject, SweepableStore
from shipyard.errors import ConfigError, InvalidArgumentError
from shipyard.store import registry as repo
from shipyard.store.db import Database

DEFAULT_MIN_AGE_S = 3600.0


@dataclass(frozen=True, slots=True)
class GarbageReport:
    """What a collection found (dry run) or removed (applied)."""

    orphans: tuple[StoredObject, ...]
    """Blobs no version refers to, older than the minimum age."""
    temporary: tuple[StoredObject, ...]
    """Temporary files a crashed write left, older than the minimum age."""
    recent: int
    """Leftovers younger than the minimum age: perhaps a registration in progress, so left alone."""
    applied: bool
    removed: int
    """How many were deleted (0 on a dry run; fewer than found when one was stored again meanwhile)."""

    @property
    def items(self) -> tuple[StoredObject, ...]:
        return self.orphans + self.temporary

    @property
    def size_bytes(self) -> int:
        return sum(item.size_bytes for item in self.items)


def collect_garbage(
    db: Database,
    artifacts: ArtifactStore,
    *,
    now: datetime,
    min_age_s: float = DEFAULT_MIN_AGE_S,
    apply: bool = False,
) -> GarbageReport:
    """List (or, with ``apply``, delete) what the artifact store holds that no version needs."""
    if min_age_s < 0:
        raise InvalidArgumentError(f"the minimum age must not be negative, got {min_age_s:g}s")
    if not isinstance(artifacts, SweepableStore):
        raise ConfigError(
            f"shipyard gc is not supported for artifact store {artifacts.uri}: it cannot list what it holds"
        )
    cutoff = now - timedelta(seconds=min_age_s)
    # List first, then read the versions: a version recorded while listing is seen by the second step.
    stored = list(artifacts.stored())
    with db.read() as conn:
        referenced = repo.referenced_sha256s(conn)
    leftovers = [item for item in stored if item.sha256 is None or item.sha256 not in referenced]
    old = [item for item in leftovers if item.modified_at <= cutoff]
    removed = 0
    if apply:
        removed = sum(artifacts.remove(item, unchanged_since=cutoff) for item in old)
    return GarbageReport(
        orphans=tuple(item for item in old if item.sha256 is not None),
        temporary=tuple(item for item in old if item.sha256 is None),
        recent=len(leftovers) - len(old),
        applied=apply,
        removed=removed,
    )
