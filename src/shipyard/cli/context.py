"""What every command needs: settings read once, the workspace opened on first use, output helpers.

Nothing heavy is imported here: every command imports this module, and the workspace (the services,
pandas, scikit-learn) is imported only when a command first asks for it.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from shipyard.errors import ConfigError, InvalidArgumentError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.client import Client
    from shipyard.config import Settings
    from shipyard.core.identity import Actor
    from shipyard.workspace import Workspace

console = Console(highlight=False)


class CliState:
    """Built by the entry point; the workspace (and its store migration) only when a command needs it.

    With SHIPYARD_URL set, commands that have a remote form go through ``remote`` (the server's HTTP API, so a
    laptop needs no database credentials); asking for the local ``workspace`` then is refused in one line
    rather than silently changing a store on this machine.
    """

    def __init__(self) -> None:
        self._workspace: Workspace | None = None
        self._settings: Settings | None = None
        self._remote: Client | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from shipyard.config import Settings

            self._settings = Settings.load()
        return self._settings

    @property
    def remote(self) -> Client | None:
        """The server at SHIPYARD_URL (with SHIPYARD_API_KEY and SHIPYARD_CA_FILE), or None to use the local store."""
        if self._remote is None and self._workspace is None and self.settings.url:  # an opened store stays in use
            from shipyard.client import Client

            self._remote = Client.from_settings(self.settings)
        return self._remote

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            from shipyard.workspace import Workspace

            self._workspace = Workspace(self.local_settings())
        return self._workspace

    def local_settings(self) -> Settings:
        """The settings of a command that only works on a store this machine reaches: refused with SHIPYARD_URL."""
        settings = self.settings
        if settings.url:
            raise ConfigError(
                f"this command has no remote form: it works on a store this machine reaches, and SHIPYARD_URL "
                f"is set ({settings.url}); unset SHIPYARD_URL to run it on the local store"
            )
        return settings

    @property
    def actor(self) -> Actor:
        """Who the audit trail names for this command's changes: the operating-system user, a local principal."""
        return local_actor()

    @property
    def opened(self) -> Workspace | None:
        """The workspace if a command opened one, without opening it (for clean-up at exit)."""
        return self._workspace


state = CliState()


def local_actor() -> Actor:
    """The person at this machine, named by their OS login (``local`` when the system cannot say)."""
    import getpass

    from shipyard.core.identity import Actor, Principal, Role

    try:
        user = getpass.getuser() or "local"
    except (OSError, KeyError, ImportError):  # no login name in the environment and no passwd entry
        user = "local"
    return Actor(Principal(user[:128], "local", frozenset({Role.ADMIN})))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def read_table(path: str, *, what: str) -> pd.DataFrame:
    """Read a CSV or Parquet file given on the command line."""
    import pandas as pd

    file = Path(path)
    if file.is_dir():
        raise InvalidArgumentError(f"{what} file {path} is a directory; name a .csv, .parquet or .json file")
    if not file.is_file():
        raise InvalidArgumentError(f"{what} file {path} does not exist")
    suffix = file.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(file)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(file)
        if suffix == ".json":
            return pd.read_json(file)
    except Exception as exc:
        raise InvalidArgumentError(f"cannot read {what} file {path}: {type(exc).__name__}: {exc}") from exc
    raise InvalidArgumentError(f"{what} file {path} must be .csv, .parquet or .json")


def check_output(path: Path) -> None:
    """Refuse an output the command could not write before doing the work that would fill it.

    Missing directories are fine (commands create them); a directory in the file's place, a file in a
    directory's place, or a place that takes no files (``/proc``, read-only) is one line naming the path.
    """
    if path.is_dir():
        raise InvalidArgumentError(f"cannot write {path}: it is a directory; name a file inside it")
    nearest = next(p for p in (path.parent, *path.parents) if p.exists())
    probe = nearest / f".shipyard-write-check-{uuid.uuid4().hex[:12]}"
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        raise output_error(path, exc) from exc
    probe.unlink(missing_ok=True)


def output_error(path: Path, exc: OSError) -> InvalidArgumentError:
    """The one-line error for an output that could not be written, naming a file where a directory should be."""
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    reason = f"{blocker} is a file, not a directory" if blocker is not None else exc.strerror or str(exc)
    return InvalidArgumentError(f"cannot write {path}: {reason}")


def parse_pairs(items: Sequence[str], *, what: str) -> dict[str, str]:
    """``key=value`` options (tags, metrics) into a dict."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"{what} {item!r} must look like key=value")
        out[key] = value
    return out
