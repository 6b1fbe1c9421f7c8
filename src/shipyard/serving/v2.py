"""The Open Inference Protocol (KServe / Triton "V2") REST API: a thin translation over the data plane.

A V2 model is a Shipyard endpoint. Inputs arrive as JSON tensors, one per feature, or one ``[N, F]``
FP32/FP64 tensor for an all-numeric model; outputs are ``predictions`` and, for classifiers,
``probabilities``. JSON and binary tensor data (the extension ``tritonclient`` uses by default) are both
accepted and answered in kind; the shared memory and classification extensions are not offered, and a
request that asks for them is refused, never half-served.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import MalformedRequestError, VersionNotFoundError
from shipyard.serving.dataplane import DataPlane, EndpointRoute, PredictOutcome
from shipyard.serving.errors import status_for
from shipyard.serving.redact import without_paths
from shipyard.serving.rest import REQUEST_HEADERS, jsonable_array, read_body, request_id_for
from shipyard.serving.v2_binary import HEADER_LENGTH, encode
from shipyard.serving.v2_tensors import (
    DATATYPES,
    FEATURE_DATATYPE,
    parse_infer_body,
    requested_outputs,
    tensors_to_payload,
)
from shipyard.version import __version__

log = logging.getLogger("shipyard.serving")

_JSON = "application/json"


def v2_router(plane: DataPlane, *, max_bytes: int) -> APIRouter:
    """Health, metadata and infer routes, closed over the data plane so nothing is looked up per request."""
    router = APIRouter(prefix="/v2", tags=["open inference protocol"])

    def route_and_version(endpoint: str, version: str | None) -> EndpointRoute:
        return check_version(endpoint, plane.route_for(endpoint), version)

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
        headers = request.headers
        header_id = headers.get("x-request-id")
        endpoint = request.path_params["model_name"]
        with plane.observed(endpoint, request_id_for(header_id)) as call:
            try:
                # An unknown model is a 404 whatever the body says, as in the REST route.
                target = check_version(endpoint, call.route(), request.path_params.get("model_version"))
                _refuse_unsupported_encoding(request)
                parsed = parse_infer_body(await read_body(request, max_bytes), headers.get(HEADER_LENGTH))
                if header_id is None and parsed.id is not None:
                    call.request_id = request_id_for(parsed.id)  # the body's id becomes the request id when sane
                served = target.models[target.policy.stable]
                outputs = requested_outputs(parsed.outputs, endpoint, classifier=served.model.classes is not None)
                payload, rows = tensors_to_payload(
                    parsed.inputs, served.version.signature, endpoint=endpoint, check_rows=plane.check_rows
                )
                outcome = await call.predict(payload, rows=rows, routing_key=headers.get("x-routing-key"))
                binary = (
                    parsed.binary_outputs
                    if parsed.outputs is not None
                    else (outputs if parsed.binary_by_default else frozenset())
                )
                return infer_response(
                    outcome,
                    outputs,
                    response_id=parsed.id if parsed.id is not None else call.request_id,
                    request_id=call.request_id,
                    binary=binary,
                )
            except Exception as exc:
                return _error_body_response(exc, call.fail(exc), call.request_id)

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


def check_version(endpoint: str, target: EndpointRoute, version: str | None) -> EndpointRoute:
    """``target``, when ``version`` (from a versioned path) is the one it serves or none is named."""
    if version is not None:
        served = target.models[target.policy.stable].version
        if version != str(served.version):
            raise VersionNotFoundError(
                f"endpoint {endpoint!r} serves version {served.version} ({served.ref}), not version "
                f"{version!r}; leave the version out of the path or ask for {served.version}"
            )
    return target


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
    return _error_body_response(exc, status, request_id)


def _error_body_response(exc: BaseException, status: int, request_id: str) -> Response:
    """``{"error": message}`` with ``status``; a 5xx names only the request id, never what went wrong."""
    if status >= 500 and status != 503:
        message = f"internal error; the server log has the details under request id {request_id}"
    else:
        message = without_paths(str(exc))  # a caller never reads a path on the server
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
            "400": {"description": "Malformed request: not JSON, not the infer shape, bad tensor or binary data"},
            "404": {"description": "Unknown endpoint, or not the version it serves"},
            "413": {"description": "Body or row count over the limit"},
            "422": {
                "description": "Input breaks the signature (a missing feature, a wrong type, a null it does "
                "not allow); the message names the feature"
            },
            "503": {"description": "No loaded model"},
        },
    }
