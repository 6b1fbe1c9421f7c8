"""A model upload read as it streams: size-limited, the file hashed while it is written to a temporary directory.

The request is ``multipart/form-data`` with an optional ``metadata`` part (JSON) and one ``file`` part (the
model file, named as on the sender's disk so its suffix tells the flavor). The sender names the file's
SHA-256 in ``X-Content-SHA256``; the server computes it from the bytes it wrote and refuses a mismatch, so a
file altered or cut short on the way is never registered. No part is held in memory but the metadata, which
is bounded too; past ``max_bytes`` (the whole body) the upload stops with 413.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from shipyard.errors import InvalidArgumentError, MalformedRequestError, PayloadTooLargeError

DIGEST_HEADER = "X-Content-SHA256"
METADATA_PART, FILE_PART = "metadata", "file"
MAX_METADATA_BYTES = 256 * 2**20
"""The metadata (with any sample, training or calibration rows in it) is parsed in memory: bounded apart."""

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class DigestMismatchError(InvalidArgumentError):
    """The uploaded bytes do not hash to the SHA-256 the sender named: altered or cut short on the way."""

    code = "digest_mismatch"


@dataclass(frozen=True, slots=True)
class Upload:
    """What arrived: the metadata as sent, and the file as written (its name kept for the flavor's sake)."""

    metadata: bytes | None
    path: Path
    filename: str
    sha256: str
    size_bytes: int


def expected_digest(header: str | None) -> str:
    """The SHA-256 the sender promises, from ``X-Content-SHA256`` (64 hex digits), checked before any byte is read."""
    if header is None:
        raise MalformedRequestError(f"a model upload needs the header {DIGEST_HEADER}: the file's SHA-256, in hex")
    digest = header.strip().lower()
    if not _HEX64.match(digest):
        raise MalformedRequestError(f"{DIGEST_HEADER} must be 64 hex digits (the file's SHA-256), got {header[:80]!r}")
    return digest


def safe_filename(raw: str | None) -> str:
    """The sender's file name without its directories or odd characters; its suffix decides the flavor."""
    name = Path((raw or "").replace("\\", "/")).name
    name = _SAFE_NAME.sub("_", name).lstrip(".")[-128:]
    return name or "model"


class _Receiver:
    """python-multipart callbacks: the metadata to memory (bounded), the file to ``directory``, hashed as written."""

    def __init__(self, directory: Path, on_metadata: Callable[[bytes], None]) -> None:
        self.directory = directory
        self.on_metadata = on_metadata
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.part: str | None = None
        self.metadata: bytearray | None = None
        self.file: IO[bytes] | None = None
        self.path: Path | None = None
        self.filename = ""
        self.hasher = hashlib.sha256()
        self.size = 0

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        part = options.get(b"name", b"").decode("latin-1")
        if part == METADATA_PART and self.metadata is None:
            self.metadata = bytearray()
        elif part == FILE_PART and self.file is None:
            self.filename = safe_filename(options.get(b"filename", b"").decode("utf-8", "replace"))
            self.path = self.directory / self.filename
            self.file = self.path.open("wb")
        else:
            raise MalformedRequestError(
                f"unexpected form part {part[:60]!r}: send one {METADATA_PART!r} (JSON) and one {FILE_PART!r} part"
            )
        self.part = part

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.part == FILE_PART and self.file is not None:
            self.file.write(chunk)
            self.hasher.update(chunk)
            self.size += len(chunk)
        elif self.metadata is not None:
            if len(self.metadata) + len(chunk) > MAX_METADATA_BYTES:
                raise PayloadTooLargeError(f"the {METADATA_PART!r} part is over {MAX_METADATA_BYTES} bytes")
            self.metadata += chunk

    def on_part_end(self) -> None:
        if self.part == METADATA_PART and self.metadata is not None:
            self.on_metadata(bytes(self.metadata))  # checked now, before a large file is written for nothing
        elif self.file is not None:
            self.file.close()
        self.part = None

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()


async def receive_upload(
    request: Any, directory: Path, *, max_bytes: int, on_metadata: Callable[[bytes], None]
) -> Upload:
    """Stream ``request``'s multipart body into ``directory``; ``on_metadata`` sees the metadata when its part ends.

    File writes and parsing run on a worker thread, chunk by chunk, so a large upload never stalls the event loop.
    """
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise MalformedRequestError(
            f"send the model as multipart/form-data: a {FILE_PART!r} part (the model file) and an optional "
            f"{METADATA_PART!r} part (JSON), with its SHA-256 in {DIGEST_HEADER}"
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise PayloadTooLargeError(f"upload of {length} bytes is over this server's limit of {max_bytes} bytes")
    receiver = _Receiver(directory, on_metadata)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())
    except (ValueError, MultipartParseError) as exc:
        raise MalformedRequestError(f"malformed multipart body: {exc}") from None
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLargeError(f"upload is over this server's limit of {max_bytes} bytes")
            if chunk:
                await asyncio.to_thread(parser.write, chunk)
        await asyncio.to_thread(parser.finalize)
    except MultipartParseError as exc:
        raise MalformedRequestError(f"malformed multipart body: {exc}") from None
    finally:
        receiver.close()
    if receiver.path is None:
        raise MalformedRequestError(f"the upload has no {FILE_PART!r} part holding the model file")
    metadata = bytes(receiver.metadata) if receiver.metadata is not None else None
    return Upload(metadata, receiver.path, receiver.filename, receiver.hasher.hexdigest(), receiver.size)
