"""skops files as canonical bytes: the same model always saves to the same sha256.

Two saves of one model differ for three reasons, none of which is part of the model:

* every zip entry carries the wall-clock time of the save;
* ``schema.json`` keys each object by ``id(obj)`` (the ``__id__`` field, for memoisation), and arrays
  are stored as ``{id}.npy`` / ``{id}.npz`` files: memory addresses, different in every process;
* a ``set`` is written in iteration order, which for strings follows the per-process hash seed.

``canonical`` rewrites a skops file with ids and file names numbered in order of first appearance,
set members in a fixed order and a fixed timestamp. Loading it gives the same object as the original
(ids are only ever compared with each other), and equal models give equal bytes, so the
content-addressed artifact store keeps one blob for all their versions.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from shipyard.flavors.skops_trust import skops_io

SCHEMA = "schema.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_LOADERS = frozenset({"NdArrayNode", "SparseMatrixNode", "BytesNode", "BytearrayNode"})


def dumps(obj: Any) -> bytes:
    """``skops.io.dumps`` made canonical."""
    return canonical(skops_io().dumps(obj))


def canonical(data: bytes) -> bytes:
    """The canonical form of a skops file's bytes (idempotent: canonical bytes map to themselves)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read(SCHEMA))
        payloads = {name: archive.read(name) for name in archive.namelist() if name != SCHEMA}
    _sort_sets(schema)
    renamer = _Renamer()
    schema = renamer.rewrite(schema)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as out:
        for old, new in renamer.files.items():
            _write(out, new, payloads[old])
        _write(out, SCHEMA, json.dumps(schema, indent=2).encode())
    return buffer.getvalue()


def _write(archive: zipfile.ZipFile, name: str, payload: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    archive.writestr(info, payload)


def _sort_sets(node: Any) -> None:
    """Put set members in an order independent of the hash seed (their content without ids)."""
    if isinstance(node, list):
        for item in node:
            _sort_sets(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _sort_sets(value)
    if node.get("__loader__") == "SetNode" and isinstance(node.get("content"), list):
        node["content"].sort(key=lambda item: json.dumps(_without_ids(item), sort_keys=True))


def _without_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_ids(v) for k, v in node.items() if k != "__id__" and k != "file"}
    if isinstance(node, list):
        return [_without_ids(v) for v in node]
    return node


class _Renamer:
    """Numbers ids and stored files in the order a depth-first walk of the schema meets them."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.files: dict[str, str] = {}

    def rewrite(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "__id__":
                out[key] = self.ids.setdefault(value, len(self.ids) + 1)
            elif key == "file" and node.get("__loader__") in _FILE_LOADERS and isinstance(value, str):
                suffix = value.rpartition(".")[2]
                out[key] = self.files.setdefault(value, f"{len(self.files) + 1}.{suffix}")
            else:
                out[key] = self.rewrite(value)
        return out
