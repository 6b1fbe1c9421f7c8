"""The REST predict route of PRODUCT.md: a thin translation from JSON to the data plane and back."""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import numpy as np
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shipyard.errors import ClientDisconnectedError, MalformedRequestError, PayloadTooLargeError
from shipyard.monitoring.outliers import OutlierScorer
from shipyard.services.outliers import explain_request, scorer_for
from shipyard.serving.dataplane import DataPlane, PredictOutcome
from shipyard.serving.errors import error_body

log = logging.getLogger("shipyard.serving")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_JSON = "application/json"


def request_id_for(header: str | None) -> str:
    """Keep a caller's request id when it is a sane token; otherwise make one."""
    if header is not None and _SANE_REQUEST_ID.match(header):
        return header
    return os.urandom(16).hex()


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refusing at once anything over the byte limit (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"request body is {int(declared)} bytes, over the limit of {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLargeError(f"request body is over the limit of {max_bytes} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # The caller's doing, not a fault here: one line without a traceback, and a 499 in the metrics.
        log.info("client went away after %d of its body bytes: %s %s", size, request.method, request.url.path)
        raise ClientDisconnectedError(f"the client disconnected after sending {size} bytes of its body") from None
    return b"".join(chunks)


def parse_predict_body(body: bytes) -> tuple[Any, int]:
    """``{"instances": [rows]}`` or ``{"inputs": {feature: [values]}}`` to a payload and its row count.

    A body that is not this envelope is malformed (400), as in the Open Inference Protocol route; what the
    rows hold is the signature's to judge (422, naming the feature and the row).
    """
    if not body.strip():
        raise MalformedRequestError('request body is empty; send JSON like {"instances": [{"feature": 1.0}]}')
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRequestError(
            f"request body must be a JSON object with 'instances' (rows) or 'inputs' (columns), "
            f"not a JSON {type(data).__name__}"
        )
    has_rows, has_columns = "instances" in data, "inputs" in data
    if has_rows == has_columns:
        raise MalformedRequestError("request body needs exactly one of 'instances' (rows) or 'inputs' (columns)")
    if has_rows:
        rows = data["instances"]
        if not isinstance(rows, list):
            raise MalformedRequestError(f"'instances' must be a list of rows, not {_json_type(rows)}")
        if not rows:
            raise MalformedRequestError("'instances' is empty; send at least one row")
        return rows, len(rows)
    columns = data["inputs"]
    if not isinstance(columns, dict):
        raise MalformedRequestError(f"'inputs' must be an object of feature columns, not {_json_type(columns)}")
    if not columns:
        raise MalformedRequestError("'inputs' is empty; send at least one feature column")
    # Every column counts: the row limit applies to the longest one, whichever comes first.
    lengths = {name: len(values) for name, values in columns.items() if isinstance(values, list)}
    count = max(lengths.values()) if lengths else 1
    if lengths and min(lengths.values()) != count:
        shortest = min(lengths, key=lengths.__getitem__)
        longest = max(lengths, key=lengths.__getitem__)
        raise MalformedRequestError(
            f"'inputs' columns have different lengths: {longest!r} has {count} values but {shortest!r} has "
            f"{lengths[shortest]}; send one value per row in every column"
        )
    if count == 0:
        raise MalformedRequestError("'inputs' columns are empty; send at least one row")
    return columns, count


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def jsonable_array(values: np.ndarray) -> Any:
    """NumPy arrays go to orjson as they are; object/string arrays become lists."""
    if values.dtype.kind in "OUS":
        return values.tolist()
    return np.ascontiguousarray(values)


def predict_response(outcome: PredictOutcome, request_id: str, *, outliers: dict[str, Any] | None = None) -> Response:
    version = outcome.served.version
    prediction = outcome.prediction
    body: dict[str, Any] = {
        "request_id": request_id,
        "endpoint": outcome.endpoint,
        "model": version.name,
        "version": version.version,
        "arm": outcome.arm.value,
        "predictions": jsonable_array(prediction.predictions),
    }
    if prediction.probabilities is not None:
        body["probabilities"] = jsonable_array(prediction.probabilities)
        body["classes"] = list(prediction.classes or ())
    if outliers is not None:
        body["outliers"] = outliers
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type=_JSON,
        headers={"X-Request-ID": request_id, "X-Model-Version": version.ref},
    )


def error_response(exc: BaseException, request_id: str) -> Response:
    """The REST error body, ``{"error": {code, message, request_id}}``, with the status from the one table."""
    status, body = error_body(exc, request_id)
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON, headers={"X-Request-ID": request_id})


def make_predict_route(plane: DataPlane, max_bytes: int) -> Any:
    """The handler, closed over the data plane and limits so nothing is looked up per request."""

    explainer = OutlierExplainer()

    async def predict(request: Request) -> Response:
        headers = request.headers
        query = request.scope["query_string"]  # empty on almost every request: nothing parsed, nothing scored
        with plane.observed(request.path_params["endpoint"], request_id_for(headers.get("x-request-id"))) as call:
            try:
                call.route()  # an unknown endpoint is a 404 whatever the body says
                explain = explain_outliers_asked(query) if query else False
                payload, rows = parse_predict_body(await read_body(request, max_bytes))
                outcome = await call.predict(payload, rows=rows, routing_key=headers.get("x-routing-key"))
                if explain:
                    outliers = await anyio.to_thread.run_sync(explainer.explain, outcome)
                    return predict_response(outcome, call.request_id, outliers=outliers)
                return predict_response(outcome, call.request_id)
            except Exception as exc:
                call.fail(exc)
                return error_response(exc, call.request_id)

    return predict


class OutlierExplainer:
    """Scores a request's rows against its version's outlier model, only for ``?explain_outliers=true``; each
    version's scorer is built on the first such request and kept (a version never changes)."""

    def __init__(self) -> None:
        self._scorers: dict[str, OutlierScorer | None] = {}

    def explain(self, outcome: PredictOutcome) -> dict[str, Any]:
        version = outcome.served.version
        if version.ref not in self._scorers:
            self._scorers[version.ref] = scorer_for(version)
        return explain_request(version, self._scorers[version.ref], outcome.inputs)


def explain_outliers_asked(query: bytes) -> bool:
    """Whether the query string asks for ``explain_outliers``; a value that is not a yes or a no is refused."""
    values = parse_qs(query.decode("latin-1")).get("explain_outliers")
    if not values:
        return False
    value = values[-1].strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise MalformedRequestError(f"explain_outliers must be true or false; got {values[-1]!r}")


REQUEST_HEADERS: list[dict[str, Any]] = [
    {"name": "X-Request-ID", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "X-Routing-Key", "in": "header", "required": False, "schema": {"type": "string"}},
]

PREDICT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            _JSON: {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["instances"],
                            "properties": {"instances": {"type": "array", "items": {"type": "object"}, "minItems": 1}},
                        },
                        {
                            "type": "object",
                            "required": ["inputs"],
                            "properties": {"inputs": {"type": "object", "additionalProperties": {"type": "array"}}},
                        },
                    ]
                },
                "example": {"instances": [{"feature_a": 1.0, "feature_b": "x"}]},
            }
        },
    },
    "parameters": [
        *REQUEST_HEADERS,
        {
            "name": "explain_outliers",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean", "default": False},
            "description": "Also answer each row's outlier score, the threshold, the verdict and the features "
            "contributing most (computed only when asked)",
        },
    ],
    "responses": {
        "200": {"description": "Predictions, and class probabilities for classifiers"},
        "400": {"description": "Body is not JSON, or not one of the two shapes above"},
        "404": {"description": "Unknown endpoint"},
        "413": {"description": "Body or row count over the limit"},
        "422": {"description": "Input breaks the signature; the message names the feature and the row"},
        "503": {"description": "No loaded model"},
    },
}
