"""Artifacts on the local filesystem, written to a temporary name and renamed into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from shipyard.artifacts.base import blob_key, sha256_of, verify
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
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
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
