"""Artifacts on the local filesystem, written to a temporary name and renamed into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from shipyard.artifacts.base import BLOB_DIR, TEMPORARY_PREFIX, StoredObject, blob_key, is_digest, sha256_of, verify
from shipyard.errors import ArtifactNotFoundError, StoreError


class LocalArtifactStore:
    """A directory of read-only blobs; a crash mid-write leaves only a temporary file behind."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    def location(self, sha256: str) -> str:
        return str(self._path(sha256))

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def put(self, data: bytes) -> str:
        digest = sha256_of(data)
        target = self._path(digest)
        if target.is_file() and target.stat().st_size == len(data):
            # Stored again: mark it fresh, so a concurrent `shipyard gc` (which spares recent blobs) keeps it.
            with contextlib.suppress(OSError):
                os.utime(target)
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o444)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StoreError(f"cannot write artifact to {target.parent}: {exc.strerror or exc}") from exc
        return digest

    def get(self, sha256: str, *, label: str) -> bytes:
        path = self._path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"the artifact of {label} is missing: no file at {path}") from None
        except OSError as exc:
            raise StoreError(f"cannot read the artifact of {label} at {path}: {exc.strerror or exc}") from exc
        return verify(data, sha256, label=label, location=str(path))

    def stored(self) -> Iterator[StoredObject]:
        """Blobs and ``.tmp-`` files under ``sha256/``; other files (prediction logs) are not the store's."""
        top = self.root / BLOB_DIR
        if not top.is_dir():
            return
        for fan in sorted(top.iterdir()):
            if not fan.is_dir():
                continue
            for path in sorted(fan.iterdir()):
                digest = path.name if is_digest(path.name) else None
                if digest is None and not path.name.startswith(TEMPORARY_PREFIX):
                    continue
                try:
                    info = path.stat()
                except FileNotFoundError:  # removed meanwhile (a finished write, another gc)
                    continue
                yield StoredObject(
                    key=str(path.relative_to(self.root)),
                    sha256=digest,
                    size_bytes=info.st_size,
                    modified_at=datetime.fromtimestamp(info.st_mtime, UTC),
                )

    def remove(self, item: StoredObject, *, unchanged_since: datetime) -> bool:
        path = self.root / item.key
        try:
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) > unchanged_since:
                return False  # stored again since it was listed: a registration is using it
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot remove {path}: {exc.strerror or exc}") from exc
        return True
