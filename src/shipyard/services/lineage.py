"""Lineage captured without the user typing it: code commit, training-data hash, owner."""

from __future__ import annotations

import getpass
import hashlib
import inspect
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd

from shipyard.core.versions import CodeInfo
from shipyard.errors import InvalidArgumentError

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _not_user_code() -> tuple[Path, ...]:
    """Directories whose files are never the user's own code: Shipyard, installed packages, Python itself.

    The scripts directory matters most: run from the command line, the first frame outside Shipyard
    is the ``shipyard`` (or ``pytest``, ``python -m`` runner) console script in the environment's
    ``bin``, which may sit inside Shipyard's own checkout rather than the user's repository.
    """
    paths = sysconfig.get_paths()
    dirs = {_PACKAGE_DIR, Path(sys.executable).parent}
    dirs.update(Path(paths[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib", "scripts") if key in paths)
    return tuple(d.resolve() for d in dirs)


def caller_directory() -> Path:
    """The directory of the first stack frame in the user's own code, else the working directory."""
    excluded = _not_user_code()
    for frame in inspect.stack(context=0)[1:]:
        filename = frame.filename
        if filename.startswith("<"):
            continue
        path = Path(filename).resolve()
        if "site-packages" in path.parts or any(d == path.parent or d in path.parents for d in excluded):
            continue
        return path.parent
    return Path.cwd()


def code_info(directory: str | Path | None = None) -> CodeInfo:
    """The git commit of ``directory`` and whether tracked files changed; empty outside a repository.

    ``directory`` is where the training code lives (the CLI passes its working directory or
    ``--code-dir``); by default, the directory of the calling script.
    """
    if directory is not None and not Path(directory).is_dir():
        raise InvalidArgumentError(
            f"code directory {str(directory)!r} does not exist; give the directory of the code that trained "
            "the model (--code-dir), or leave it out to use the current one"
        )
    where = Path(directory).resolve() if directory is not None else caller_directory()
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
