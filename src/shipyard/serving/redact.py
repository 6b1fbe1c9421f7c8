"""Keep the server's filesystem out of what callers read: absolute paths in messages become their last part.

Error messages are written for the operator's log, where a full path helps ("no file at
/srv/shipyard/artifacts/sha256/ab/ab12…"). A response body reaches anyone who can call the server, and a
path there tells them the user name, the layout of the disk and where the store lives. So bodies carry the
file's own name (for an artifact, its sha256), which still lets an operator find it, and the log keeps the
rest.
"""

from __future__ import annotations

import re

_SEGMENT = r"[\w.@%+~=-]+"
_LAST = r"[\w.@%+~=-]*[\w@%+~=-]"  # a path at the end of a sentence keeps its full stop outside
_API_ROOTS = ("v1", "v2")  # "/v1/endpoints/x/predict" in a hint is the API, not the disk

_POSIX = re.compile(rf"(?<![\w:/.~-])(?:file://)?/(?:{_SEGMENT}/)+({_LAST})")
_WINDOWS = re.compile(rf"(?<![\w])[A-Za-z]:\\(?:{_SEGMENT}\\)*({_LAST})")


def without_paths(message: str) -> str:
    """``message`` with every absolute filesystem path (POSIX, ``file://`` or Windows) cut to its last part."""
    if "/" not in message and "\\" not in message:
        return message
    message = _POSIX.sub(_last_part, message)
    return _WINDOWS.sub(lambda m: m.group(1), message)


def _last_part(match: re.Match[str]) -> str:
    path = match.group(0)
    first = path.removeprefix("file://").lstrip("/").split("/", 1)[0]
    return path if first in _API_ROOTS else match.group(1)
