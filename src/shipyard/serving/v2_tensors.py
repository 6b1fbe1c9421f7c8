"""Open Inference Protocol infer requests: the body parsed, and its tensors turned into a data-plane payload.

Reading a request is a job of its own, apart from the routes that receive it: the body's structure is
checked (every problem a 400 that names the tensor and what was wrong), binary tensor data is cut out of
the body, and the tensors become columns (one per feature) or one ``[N, F]`` matrix, their values checked
against their datatypes and the signature's feature types. Nothing here touches HTTP; ``v2.py`` keeps
the routes, the metadata, the responses and the OpenAPI text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from shipyard.core.inputs import describe_value
from shipyard.core.signature import FeatureType, Signature
from shipyard.errors import MalformedRequestError, SignatureError
from shipyard.serving.v2_binary import BinarySection, decode, split_body

# The V2 datatype a feature is described with in model metadata, and the datatypes accepted for it.
FEATURE_DATATYPE: Mapping[FeatureType, str] = {
    FeatureType.INTEGER: "INT64",
    FeatureType.FLOAT: "FP64",
    FeatureType.BOOLEAN: "BOOL",
    FeatureType.STRING: "BYTES",
    FeatureType.DATETIME: "BYTES",
}
_INT_BOUNDS: Mapping[str, tuple[int, int]] = {
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
}
_FLOATS = frozenset({"FP16", "FP32", "FP64"})
_NUMBERS = frozenset(_INT_BOUNDS) | _FLOATS
DATATYPES = ("BOOL", *_INT_BOUNDS, *sorted(_FLOATS), "BYTES")
_ACCEPTED: Mapping[FeatureType, frozenset[str]] = {
    FeatureType.INTEGER: _NUMBERS,
    FeatureType.FLOAT: _NUMBERS,
    FeatureType.BOOLEAN: frozenset({"BOOL"}) | frozenset(_INT_BOUNDS),
    FeatureType.STRING: frozenset({"BYTES"}),
    FeatureType.DATETIME: frozenset({"BYTES"}),
}
# NumPy kinds that hold a datatype's values without any element needing a look.
_KINDS: Mapping[str, str] = {
    "BOOL": "b",
    "BYTES": "U",
    **dict.fromkeys(_INT_BOUNDS, "iu"),
    **dict.fromkeys(_FLOATS, "iuf"),
}
_WANTED = {"BOOL": "true or false", "BYTES": "strings", **dict.fromkeys(_INT_BOUNDS, "integers")}
_MATRIX_DATATYPES = ("FP32", "FP64")

_UNSUPPORTED_PARAMETERS: Mapping[str, str] = {
    "shared_memory_region": "shared memory tensors are not supported; send JSON tensors",
    "classification": "the classification extension is not supported; ask for the 'probabilities' output",
}


@dataclass(frozen=True, slots=True)
class InputTensor:
    """One input tensor as sent, its structure checked; its values are checked when converted."""

    name: str
    shape: tuple[int, ...]
    datatype: str
    data: Any


@dataclass(frozen=True, slots=True)
class InferRequest:
    """An infer request's parts that matter here; ``outputs`` None means every output."""

    id: str | None
    inputs: tuple[InputTensor, ...]
    outputs: tuple[str, ...] | None
    binary_outputs: frozenset[str] = frozenset()
    binary_by_default: bool = False


def parse_infer_body(body: bytes, header_length: str | None = None) -> InferRequest:
    """The request's structure checked (not yet against any signature); every problem is a 400."""
    binary = BinarySection(b"")
    if header_length is not None:
        body, rest = split_body(body, header_length)
        binary = BinarySection(rest)
    if not body.strip():
        raise MalformedRequestError('request body is empty; send JSON like {"inputs": [{"name": …, "data": …}]}')
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRequestError(f"request body must be a JSON object with 'inputs', not {_json_type(data)}")
    request_id = data.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise MalformedRequestError(f"'id' must be a string, not {_json_type(request_id)}")
    parameters = _parameters(data, "the request")
    binary_by_default = bool(parameters.get("binary_data_output", False))
    inputs = data.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise MalformedRequestError("'inputs' must be a non-empty list of tensors {name, shape, datatype, data}")
    tensors = tuple(_tensor(item, i, binary) for i, item in enumerate(inputs))
    binary.check_consumed()
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise MalformedRequestError(f"input {next(n for n in names if names.count(n) > 1)!r} is given twice")
    wanted = data.get("outputs")
    if wanted is None:
        return InferRequest(request_id, tensors, None, binary_by_default=binary_by_default)
    if not isinstance(wanted, list):
        raise MalformedRequestError(f"'outputs' must be a list of {{name}} objects, not {_json_type(wanted)}")
    named = [_output_name(item, i, binary_by_default) for i, item in enumerate(wanted)]
    return InferRequest(
        request_id,
        tensors,
        tuple(name for name, _ in named),
        frozenset(name for name, is_binary in named if is_binary),
        binary_by_default,
    )


def _parameters(item: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    parameters = item.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise MalformedRequestError(f"'parameters' of {where} must be an object, not {_json_type(parameters)}")
    for key, message in _UNSUPPORTED_PARAMETERS.items():
        if key in parameters:
            raise MalformedRequestError(f"{where}: {message}")
    return parameters


def _tensor(item: Any, index: int, binary: BinarySection) -> InputTensor:
    if not isinstance(item, dict):
        raise MalformedRequestError(f"inputs[{index}] must be an object {{name, shape, datatype, data}}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedRequestError(f"inputs[{index}] needs a 'name' (a string)")
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise MalformedRequestError(f"input {name!r} needs a 'shape': a list of non-negative integers, got {shape!r}")
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise MalformedRequestError(f"input {name!r} has datatype {datatype!r}; supported: {', '.join(DATATYPES)}")
    parameters = _parameters(item, f"input {name!r}")
    if "binary_data_size" in parameters:
        raw = binary.take(name, parameters["binary_data_size"])
        return InputTensor(name, tuple(shape), datatype, decode(name, datatype, raw, math.prod(shape)))
    if "data" not in item:
        raise MalformedRequestError(f"input {name!r} has no 'data'; send its values as a JSON list")
    values = item["data"]
    if not isinstance(values, list):
        raise MalformedRequestError(f"input {name!r}: 'data' must be a list, not {_json_type(values)}")
    return InputTensor(name, tuple(shape), datatype, values)


def _output_name(item: Any, index: int, binary_by_default: bool) -> tuple[str, bool]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise MalformedRequestError(f"outputs[{index}] must be an object with a 'name'")
    name: str = item["name"]
    parameters = _parameters(item, f"output {name!r}")
    return name, bool(parameters.get("binary_data", binary_by_default))


def requested_outputs(names: tuple[str, ...] | None, endpoint: str, *, classifier: bool) -> frozenset[str]:
    """The outputs to answer with: every output the endpoint has when none are named; an unknown one is a 400."""
    available = ("predictions", "probabilities") if classifier else ("predictions",)
    if names is None:
        return frozenset(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise MalformedRequestError(
            f"unknown output {unknown[0]!r}; endpoint {endpoint!r} has outputs {list(available)}"
        )
    return frozenset(names)


def tensors_to_payload(
    tensors: tuple[InputTensor, ...], signature: Signature, *, endpoint: str, check_rows: Callable[[int], None]
) -> tuple[Any, int]:
    """A data-plane payload and its row count: a dict of columns, or an ``[N, F]`` float matrix."""
    names = signature.names
    if len(tensors) == 1 and tensors[0].name not in names:
        return _matrix(tensors[0], signature, endpoint=endpoint, check_rows=check_rows)
    given = {t.name: t for t in tensors}
    missing = [n for n in names if n not in given]
    if missing:  # the signature's to refuse (422), as a missing feature is in the REST route
        raise SignatureError(
            f"input tensor{'s' if len(missing) > 1 else ''} {missing} missing; endpoint {endpoint!r} takes one "
            f"tensor per feature {list(names)}"
            + (f", or one [N, {len(names)}] FP32/FP64 tensor" if _all_numeric(signature) else "")
        )
    rows = -1
    first = ""
    for name in names:
        tensor = given[name]
        shape = tensor.shape
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise MalformedRequestError(
                f"input {name!r} has shape {list(shape)}; a feature tensor is [N] or [N, 1], one value per row"
            )
        if rows < 0:
            rows, first = shape[0], name
        elif shape[0] != rows:
            raise MalformedRequestError(f"input {name!r} has {shape[0]} rows, but input {first!r} has {rows}")
    for tensor in tensors:  # extra tensors too: every input describes the same rows
        if tensor.name not in names and tensor.shape and tensor.shape[0] != rows:
            raise MalformedRequestError(
                f"input {tensor.name!r} has {tensor.shape[0]} rows, but input {first!r} has {rows}"
            )
    check_rows(rows)
    columns: dict[str, Any] = {}
    for spec in signature.features:
        tensor = given[spec.name]
        if tensor.datatype not in _ACCEPTED[spec.type]:  # a wrong type for the feature: 422, as in REST
            raise SignatureError(
                f"input {spec.name!r} is {tensor.datatype}, but feature {spec.name!r} of endpoint {endpoint!r} is "
                f"{spec.type.value}; send it as {FEATURE_DATATYPE[spec.type]}",
                feature=spec.name,
            )
        columns[spec.name] = _values(tensor)
    for tensor in tensors:  # extra tensors go through so a strict endpoint can refuse them
        columns.setdefault(tensor.name, tensor.data)
    return columns, rows


def _matrix(
    tensor: InputTensor, signature: Signature, *, endpoint: str, check_rows: Callable[[int], None]
) -> tuple[np.ndarray, int]:
    names = signature.names
    width = len(names)
    if not _all_numeric(signature):
        other = [f.name for f in signature.features if not f.type.is_numeric]
        raise MalformedRequestError(
            f"input {tensor.name!r} is not a feature of endpoint {endpoint!r}, and one [N, F] tensor is only "
            f"taken by all-numeric models ({other} are not numeric); send one tensor per feature {list(names)}"
        )
    if len(tensor.shape) != 2 or tensor.shape[1] != width:
        raise MalformedRequestError(
            f"input {tensor.name!r} has shape {list(tensor.shape)}; endpoint {endpoint!r} takes one [N, {width}] "
            f"FP32/FP64 tensor (columns {list(names)}) or one tensor per feature"
        )
    if tensor.datatype not in _MATRIX_DATATYPES:
        raise MalformedRequestError(f"a single [N, {width}] input must be FP32 or FP64, not {tensor.datatype}")
    rows = tensor.shape[0]
    check_rows(rows)
    values = _values(tensor)
    matrix = np.asarray(values, dtype=np.float64).reshape(rows, width)
    return matrix, rows


def _all_numeric(signature: Signature) -> bool:
    return all(f.type.is_numeric for f in signature.features)


def _values(tensor: InputTensor) -> Any:
    """The tensor's values, flat, checked against its datatype and shape: an array, or a list of strings."""
    datatype = tensor.datatype
    expected = math.prod(tensor.shape)
    try:
        array = np.asarray(tensor.data)
    except (ValueError, TypeError, OverflowError):
        array = None  # ragged nesting or huge integers: the element walk below explains
    if array is not None and array.size != expected and array.dtype.kind != "O":
        raise MalformedRequestError(
            f"input {tensor.name!r} has shape {list(tensor.shape)} ({expected} values), but its data holds {array.size}"
        )
    if array is not None and (array.size == 0 or array.dtype.kind in _KINDS[datatype]):
        flat = array.reshape(-1)
        if datatype in _INT_BOUNDS and flat.size:
            _check_bounds(tensor, int(flat.min()), int(flat.max()))
        if array.dtype.kind == "f":
            _check_finite(tensor, flat)
        return flat.tolist() if datatype == "BYTES" else flat
    # The careful path: walk the original values so the message shows what the caller sent.
    elements = _flatten(tensor)
    for position, value in enumerate(elements):
        if not _element_ok(datatype, value):
            raise MalformedRequestError(
                f"input {tensor.name!r} is {datatype} but holds {describe_value(value)} at position {position}; "
                f"{datatype} data must be {_WANTED.get(datatype, 'numbers')}"
            )
    if len(elements) != expected:
        raise MalformedRequestError(
            f"input {tensor.name!r} has shape {list(tensor.shape)} ({expected} values), but its data holds "
            f"{len(elements)}"
        )
    # Only nulls (missing values) are left; the signature decides whether the feature may be missing.
    return elements if datatype == "BYTES" else np.asarray(elements, dtype=object)


def _check_bounds(tensor: InputTensor, low: int, high: int) -> None:
    lo, hi = _INT_BOUNDS[tensor.datatype]
    if low < lo or high > hi:
        bad = low if low < lo else high
        raise MalformedRequestError(f"input {tensor.name!r} is {tensor.datatype} but holds {bad}, outside [{lo}, {hi}]")


def _check_finite(tensor: InputTensor, flat: np.ndarray) -> None:
    """Refuse ±inf: JSON cannot carry it, so only binary data can, and no model is trained to take it.

    NaN goes on: like a JSON null it is a missing value, which the signature allows or refuses per feature.
    """
    infinite = np.isinf(flat)
    if infinite.any():
        position = int(np.argmax(infinite))
        raise SignatureError(
            f"input {tensor.name!r} holds {flat[position]} at position {position}; {tensor.datatype} values must be "
            "finite (NaN stands for a missing value where the feature allows one)",
            feature=tensor.name,
        )


def _flatten(tensor: InputTensor) -> list[Any]:
    """The values in row-major order, walked without recursion: data nests no deeper than the shape."""
    depth = max(len(tensor.shape), 1)
    values: list[Any] = []
    stack = [iter(tensor.data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                if len(stack) == depth:
                    raise MalformedRequestError(
                        f"input {tensor.name!r} nests its data deeper than its shape {list(tensor.shape)}; send the "
                        "values flat in row-major order, or nested one list per dimension"
                    )
                stack.append(iter(value))
                break
            values.append(value)
        else:
            stack.pop()
    return values


def _element_ok(datatype: str, value: Any) -> bool:
    if value is None:
        return True
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if datatype in _FLOATS:
        return isinstance(value, int | float)
    lo, hi = _INT_BOUNDS[datatype]
    return isinstance(value, int) and lo <= value <= hi


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
