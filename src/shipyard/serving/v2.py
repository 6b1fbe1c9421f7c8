"""The Open Inference Protocol (KServe / Triton "V2") REST API: a thin translation over the data plane.

A V2 model is a Shipyard endpoint. Inputs arrive as JSON tensors, one per feature, or one ``[N, F]``
FP32/FP64 tensor for an all-numeric model; outputs are ``predictions`` and, for classifiers,
``probabilities``. JSON and binary tensor data (the extension ``tritonclient`` uses by default) are both
accepted and answered in kind; the shared memory and classification extensions are not offered, and a
request that asks for them is refused, never half-served.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from shipyard import __version__
from shipyard.core.signature import FeatureType, Signature
from shipyard.errors import MalformedRequestError, VersionNotFoundError
from shipyard.serving.dataplane import DataPlane, EndpointRoute, PredictOutcome
from shipyard.serving.errors import status_for
from shipyard.serving.rest import REQUEST_HEADERS, jsonable_array, read_body, request_id_for
from shipyard.serving.v2_binary import HEADER_LENGTH, BinarySection, decode, encode, split_body

log = logging.getLogger("shipyard.serving")

_JSON = "application/json"

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


def v2_router(plane: DataPlane, *, max_bytes: int) -> APIRouter:
    """Health, metadata and infer routes, closed over the data plane so nothing is looked up per request."""
    router = APIRouter(prefix="/v2", tags=["open inference protocol"])

    def route_and_version(endpoint: str, version: str | None) -> EndpointRoute:
        target = plane.route_for(endpoint)
        if version is not None:
            served = target.models[target.policy.stable].version
            if version != str(served.version):
                raise VersionNotFoundError(
                    f"endpoint {endpoint!r} serves version {served.version} ({served.ref}), not version "
                    f"{version!r}; leave the version out of the path or ask for {served.version}"
                )
        return target

    async def server_metadata() -> Response:
        return _json({"name": "shipyard", "version": __version__, "extensions": []})

    async def server_live() -> Response:
        return _json({"live": True})

    async def server_ready() -> Response:
        ready, _ = plane.readiness()
        return _json({"ready": ready}, 200 if ready else 503)

    def metadata(request: Request, endpoint: str, version: str | None) -> Response:
        try:
            return _json(model_metadata_body(endpoint, route_and_version(endpoint, version)))
        except Exception as exc:
            return _error_response(exc, request_id_for(request.headers.get("x-request-id")), endpoint)

    def readiness(request: Request, endpoint: str, version: str | None) -> Response:
        try:
            route_and_version(endpoint, version)
        except Exception as exc:
            return _error_response(exc, request_id_for(request.headers.get("x-request-id")), endpoint)
        return _json({"name": endpoint, "ready": True})

    async def model_metadata(request: Request, model_name: str) -> Response:
        return metadata(request, model_name, None)

    async def version_metadata(request: Request, model_name: str, model_version: str) -> Response:
        return metadata(request, model_name, model_version)

    async def model_ready(request: Request, model_name: str) -> Response:
        return readiness(request, model_name, None)

    async def version_ready(request: Request, model_name: str, model_version: str) -> Response:
        return readiness(request, model_name, model_version)

    async def infer(request: Request) -> Response:
        start = time.perf_counter()
        header_id = request.headers.get("x-request-id")
        request_id = request_id_for(header_id)
        endpoint = request.path_params["model_name"]
        label = endpoint if endpoint in plane.routes else "unknown"
        version = "none"
        status = 200
        rows = 0
        gauge = plane.in_flight(label)
        gauge.inc()
        try:
            # An unknown model is a 404 whatever the body says, as in the REST route.
            target = route_and_version(endpoint, request.path_params.get("model_version"))
            _refuse_unsupported_encoding(request)
            parsed = parse_infer_body(await read_body(request, max_bytes), request.headers.get(HEADER_LENGTH))
            if header_id is None and parsed.id is not None:
                request_id = request_id_for(parsed.id)  # the body's id becomes the request id when sane
            served = target.models[target.policy.stable]
            outputs = _requested_outputs(parsed.outputs, endpoint, classifier=served.model.classes is not None)
            payload, rows = tensors_to_payload(
                parsed.inputs, served.version.signature, endpoint=endpoint, check_rows=plane.check_rows
            )
            routing_key = request.headers.get("x-routing-key") or request_id
            outcome = await plane.apredict(endpoint, payload, rows=rows, routing_key=routing_key)
            version = outcome.served.ref
            response_id = parsed.id if parsed.id is not None else request_id
            binary = (
                parsed.binary_outputs
                if parsed.outputs is not None
                else (outputs if parsed.binary_by_default else frozenset())
            )
            return infer_response(outcome, outputs, response_id=response_id, request_id=request_id, binary=binary)
        except Exception as exc:
            response = _error_response(exc, request_id, endpoint)
            status = response.status_code
            return response
        finally:
            gauge.dec()
            plane.observe(label, version, status, time.perf_counter() - start, rows)

    ready_responses: dict[int | str, dict[str, Any]] = {503: {"description": "Not ready"}}
    model_responses: dict[int | str, dict[str, Any]] = {
        404: {"description": "No such endpoint, or not the version it serves"},
        503: {"description": "The endpoint has no loaded model"},
    }
    router.add_api_route("", server_metadata, methods=["GET"], summary="Server metadata", response_class=Response)
    router.add_api_route("/health/live", server_live, methods=["GET"], summary="Server live", response_class=Response)
    router.add_api_route(
        "/health/ready",
        server_ready,
        methods=["GET"],
        summary="Server ready: every endpoint has a loaded model",
        response_class=Response,
        responses=ready_responses,
    )
    for path, meta, ready in (
        ("/models/{model_name}", model_metadata, model_ready),
        ("/models/{model_name}/versions/{model_version}", version_metadata, version_ready),
    ):
        router.add_api_route(
            path,
            meta,
            methods=["GET"],
            summary="Model metadata: the endpoint's features as input tensors, and its outputs",
            response_class=Response,
            responses=model_responses,
        )
        router.add_api_route(
            path + "/ready",
            ready,
            methods=["GET"],
            summary="Model ready",
            response_class=Response,
            responses=model_responses,
        )
        router.add_api_route(
            path + "/infer",
            infer,
            methods=["POST"],
            summary="Infer with an endpoint's model",
            response_class=Response,
            openapi_extra=infer_openapi(versioned="model_version" in path),
        )
    return router


# -- metadata ------------------------------------------------------------------------------


def model_metadata_body(endpoint: str, target: EndpointRoute) -> dict[str, Any]:
    """Metadata built from the signature of the version the endpoint serves."""
    served = target.models[target.policy.stable]
    version = served.version
    signature = version.signature
    output = signature.output
    outputs: list[dict[str, Any]] = [
        {"name": "predictions", "datatype": datatype_of_dtype(output.dtype), "shape": [-1, *output.shape]}
    ]
    classes = served.model.classes
    if classes is not None:
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(classes)]})
    return {
        "name": endpoint,
        "versions": [str(version.version)],
        "platform": f"shipyard-{version.flavor}",
        "inputs": [
            {"name": f.name, "datatype": FEATURE_DATATYPE[f.type], "shape": [-1, 1]} for f in signature.features
        ],
        "outputs": outputs,
    }


def datatype_of_dtype(dtype: Any) -> str:
    """The V2 datatype for a NumPy dtype (or a signature's dtype name); text and objects are BYTES."""
    try:
        kind_bits = np.dtype(dtype)
    except TypeError:
        return "BYTES"
    bits = kind_bits.itemsize * 8
    if kind_bits.kind == "b":
        return "BOOL"
    if kind_bits.kind in "iu" and bits in (8, 16, 32, 64):
        return f"{'U' if kind_bits.kind == 'u' else ''}INT{bits}"
    if kind_bits.kind == "f" and bits in (16, 32, 64):
        return f"FP{bits}"
    return "BYTES"


# -- the infer request ---------------------------------------------------------------------


def _refuse_unsupported_encoding(request: Request) -> None:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise MalformedRequestError(f"compressed request bodies (Content-Encoding: {encoding}) are not supported")


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


def _requested_outputs(names: tuple[str, ...] | None, endpoint: str, *, classifier: bool) -> frozenset[str]:
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
    if missing:
        raise MalformedRequestError(
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
    check_rows(rows)
    columns: dict[str, Any] = {}
    for spec in signature.features:
        tensor = given[spec.name]
        if tensor.datatype not in _ACCEPTED[spec.type]:
            raise MalformedRequestError(
                f"input {spec.name!r} is {tensor.datatype}, but feature {spec.name!r} of endpoint {endpoint!r} is "
                f"{spec.type.value}; send it as {FEATURE_DATATYPE[spec.type]}"
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
        return flat.tolist() if datatype == "BYTES" else flat
    # The careful path: walk the original values so the message shows what the caller sent.
    elements = list(_flatten(tensor.data))
    for position, value in enumerate(elements):
        if not _element_ok(datatype, value):
            raise MalformedRequestError(
                f"input {tensor.name!r} is {datatype} but holds {_shown(value)} at position {position}; "
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


def _flatten(data: Any) -> Iterator[Any]:
    for value in data:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


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


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{text[:37]}... ({type(value).__name__})" if len(text) > 40 else f"{text} ({type(value).__name__})"


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


# -- responses -----------------------------------------------------------------------------


def infer_response(
    outcome: PredictOutcome,
    outputs: frozenset[str],
    *,
    response_id: str,
    request_id: str,
    binary: frozenset[str] = frozenset(),
) -> Response:
    """The V2 response: flat row-major data with its shape; class labels ride on the probabilities.

    Outputs asked for as binary go after the JSON header as raw bytes, as the extension describes.
    """
    prediction = outcome.prediction
    version = outcome.served.version
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []

    def add(name: str, values: np.ndarray, datatype: str, json_data: Any, parameters: dict[str, Any]) -> None:
        tensor: dict[str, Any] = {"name": name, "shape": list(values.shape), "datatype": datatype}
        if name in binary:
            raw = encode(datatype, values)
            chunks.append(raw)
            parameters = {**parameters, "binary_data_size": len(raw)}
        else:
            tensor["data"] = json_data
        if parameters:
            tensor["parameters"] = parameters
        tensors.append(tensor)

    if "predictions" in outputs:
        predictions = prediction.predictions
        datatype = datatype_of_dtype(predictions.dtype)
        flat = predictions.reshape(-1)
        data = [None if v is None else str(v) for v in flat.tolist()] if datatype == "BYTES" else jsonable_array(flat)
        add("predictions", predictions, datatype, data, {})
    if "probabilities" in outputs and prediction.probabilities is not None:
        probabilities = np.asarray(prediction.probabilities, dtype=np.float64)
        add(
            "probabilities",
            probabilities,
            "FP64",
            np.ascontiguousarray(probabilities.reshape(-1)),
            {"classes": list(prediction.classes or ())},
        )
    body = {
        "model_name": outcome.endpoint,
        "model_version": str(version.version),
        "id": response_id,
        "outputs": tensors,
    }
    header = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = {"X-Request-ID": request_id, "X-Model-Version": version.ref}
    if not chunks:
        return Response(header, media_type=_JSON, headers=headers)
    headers["Inference-Header-Content-Length"] = str(len(header))
    return Response(header + b"".join(chunks), media_type="application/octet-stream", headers=headers)


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON)


def _error_response(exc: BaseException, request_id: str, endpoint: str) -> Response:
    """The protocol's error body, ``{"error": message}``, with the status the REST error table gives."""
    status = status_for(exc)
    if status >= 500 and status != 503:
        log.error("request %s to endpoint %s failed", request_id, endpoint, exc_info=exc)
        message = f"internal error; the server log has the details under request id {request_id}"
    else:
        message = str(exc)
    return Response(
        orjson.dumps({"error": message}), status_code=status, media_type=_JSON, headers={"X-Request-ID": request_id}
    )


def infer_openapi(*, versioned: bool) -> dict[str, Any]:
    """The infer body documented by hand: the route reads raw JSON, so FastAPI cannot infer it."""
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string", "description": "A feature name, or any name for one [N, F] tensor"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "data": {"type": "array", "description": "Values in row-major order, flat or nested"},
            "parameters": {"type": "object"},
        },
    }
    path_parameters = [{"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}]
    if versioned:
        path_parameters.append({"name": "model_version", "in": "path", "required": True, "schema": {"type": "string"}})
    return {
        "description": (
            "Open Inference Protocol infer. The model is a Shipyard endpoint. Send one tensor per feature "
            "(shape [N] or [N, 1]; BYTES for strings) or, for an all-numeric model, one [N, F] FP32/FP64 tensor. "
            "Binary tensor data is not supported."
        ),
        "requestBody": {
            "required": True,
            "content": {
                _JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["inputs"],
                        "properties": {
                            "id": {"type": "string"},
                            "parameters": {"type": "object"},
                            "inputs": {"type": "array", "items": tensor, "minItems": 1},
                            "outputs": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {
                                        "name": {"type": "string", "enum": ["predictions", "probabilities"]}
                                    },
                                },
                            },
                        },
                    },
                    "example": {
                        "id": "order-123",
                        "inputs": [
                            {"name": "features", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
                        ],
                        "outputs": [{"name": "predictions"}, {"name": "probabilities"}],
                    },
                }
            },
        },
        "parameters": [*path_parameters, *REQUEST_HEADERS],
        "responses": {
            "200": {"description": "Outputs 'predictions' and, for classifiers, 'probabilities' [N, C]"},
            "400": {"description": "Malformed request: not JSON, bad tensor or binary data, missing feature"},
            "404": {"description": "Unknown endpoint, or not the version it serves"},
            "413": {"description": "Body or row count over the limit"},
            "422": {"description": "Values break the signature; the message names the feature and the row"},
            "503": {"description": "No loaded model"},
        },
    }
