"""The Open Inference Protocol's binary tensor data extension (what ``tritonclient`` sends by default).

A request or response body is a JSON header followed by raw tensor bytes; the header's length travels
in ``Inference-Header-Content-Length`` and each binary tensor names its byte count in
``parameters.binary_data_size``. Numbers are little-endian; BOOL is one byte; each BYTES element is a
4-byte little-endian length followed by that many bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from shipyard.errors import MalformedRequestError

HEADER_LENGTH = "inference-header-content-length"

_NUMPY_TYPES: dict[str, str] = {
    "BOOL": "?",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def split_body(body: bytes, header_length: str) -> tuple[bytes, bytes]:
    """The JSON header and the binary section of a request body."""
    if not header_length.strip().isdigit():
        raise MalformedRequestError(f"Inference-Header-Content-Length must be a byte count, got {header_length!r}")
    length = int(header_length)
    if length > len(body):
        raise MalformedRequestError(
            f"Inference-Header-Content-Length is {length}, but the body has only {len(body)} bytes"
        )
    return body[:length], body[length:]


class BinarySection:
    """Hands out the binary section tensor by tensor, in the order the inputs are listed."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._offset = 0

    def take(self, name: str, size: Any) -> bytes:
        if type(size) is not int or size < 0:
            raise MalformedRequestError(f"input {name!r}: binary_data_size must be a non-negative integer")
        end = self._offset + size
        if end > len(self._data):
            raise MalformedRequestError(
                f"input {name!r} declares {size} bytes of binary data, but only {len(self._data) - self._offset} "
                "are left in the body"
            )
        chunk = bytes(self._data[self._offset : end])
        self._offset = end
        return chunk

    def check_consumed(self) -> None:
        left = len(self._data) - self._offset
        if left:
            raise MalformedRequestError(f"the body has {left} bytes of binary data that no input claims")


def decode(name: str, datatype: str, raw: bytes, count: int) -> list[Any] | np.ndarray:
    """``count`` values of ``datatype`` from raw bytes: an array for numbers, a list of str for BYTES."""
    if datatype == "BYTES":
        return _decode_bytes(name, raw, count)
    dtype = np.dtype(_NUMPY_TYPES[datatype])
    if len(raw) != count * dtype.itemsize:
        raise MalformedRequestError(
            f"input {name!r}: {count} {datatype} values need {count * dtype.itemsize} bytes, got {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)


def _decode_bytes(name: str, raw: bytes, count: int) -> list[Any]:
    values: list[Any] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise MalformedRequestError(f"input {name!r}: truncated BYTES element at byte {offset}")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise MalformedRequestError(f"input {name!r}: BYTES element of {length} bytes runs past the data")
        try:
            values.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise MalformedRequestError(f"input {name!r}: element {len(values)} is not UTF-8 text") from None
        offset += length
    if len(values) != count:
        raise MalformedRequestError(f"input {name!r}: its shape holds {count} values, but the data holds {len(values)}")
    return values


def encode(datatype: str, values: np.ndarray) -> bytes:
    """Raw bytes of an output tensor, row-major."""
    flat = values.reshape(-1)
    if datatype == "BYTES":
        parts = []
        for value in flat.tolist():
            data = str(value).encode("utf-8")
            parts.append(struct.pack("<I", len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.ascontiguousarray(flat, dtype=np.dtype(_NUMPY_TYPES[datatype])).tobytes()
