"""The installed distribution's version: one source (pyproject.toml, read through the package metadata).

Importing it never imports ``shipyard/__init__``'s public names, so the server and the CLI can ask for it
without paying for the package's lazy exports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("shipyard")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
