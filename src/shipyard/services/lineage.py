"""Lineage captured without the user typing it: code commit, training-data hash, owner."""

from __future__ import annotations

import getpass
import hashlib
import inspect
import os
import subprocess
from pathlib import Path

import pandas as pd

from shipyard.core.versions import CodeInfo

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def caller_directory() -> Path:
    """The directory of the first stack frame outside Shipyard: where the user's code lives."""
    for frame in inspect.stack(context=0)[1:]:
        filename = frame.filename
        if filename.startswith("<"):
            continue
        path = Path(filename).resolve()
        if _PACKAGE_DIR in path.parents or "site-packages" in path.parts:
            continue
        return path.parent
    return Path.cwd()


def code_info(directory: Path | None = None) -> CodeInfo:
    """The git commit of ``directory`` and whether tracked files changed; empty outside a repository."""
    where = directory or caller_directory()
    top = _git(where, "rev-parse", "--show-toplevel")
    if top is None:
        return CodeInfo()
    commit = _git(where, "rev-parse", "HEAD")
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    return CodeInfo(commit=commit, dirty=bool(status) if status is not None else None, repository=top)


def _git(where: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash of a table: column names, dtypes and every value, independent of the index."""
    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}\x1f{dtype}\x1e".encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
