"""One table from error class to HTTP status, and the one error body every route returns.

No web framework here: the data plane's request bracket reads the table to count a failed request under
its status, whichever protocol the request came in by.
"""

from __future__ import annotations

from typing import Any

from shipyard.errors import (
    AuthenticationError,
    ClientDisconnectedError,
    ConflictError,
    EndpointNotFoundError,
    HeadersTooLargeError,
    InvalidArgumentError,
    InvalidRefError,
    MalformedRequestError,
    ModelLoadError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PredictionError,
    RateLimitedError,
    ShipyardError,
    SignatureError,
    SignatureInferenceError,
    StoreError,
    UnsupportedModelError,
    UntrustedArtifactError,
)
from shipyard.serving.redact import without_paths

# Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[ShipyardError], int], ...] = (
    (MalformedRequestError, 400),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (RateLimitedError, 429),
    (PayloadTooLargeError, 413),
    (HeadersTooLargeError, 431),
    # Not an HTTP status a client ever sees (it has gone): nginx's 499, so metrics tell it from a 5xx.
    (ClientDisconnectedError, 499),
    (EndpointNotFoundError, 404),
    (NotFoundError, 404),
    (SignatureError, 422),
    (InvalidArgumentError, 422),
    (InvalidRefError, 422),
    # A model refused at registration (an upload): what was sent is the problem, not the server.
    (SignatureInferenceError, 422),
    (UnsupportedModelError, 422),
    (UntrustedArtifactError, 422),
    # Raised to callers only when the version they asked for cannot load (a refused rollout candidate);
    # the server's own loading failures surface as 503 not_ready instead.
    (ModelLoadError, 422),
    (ConflictError, 409),
    (NotReadyError, 503),
    (StoreError, 503),
    (PredictionError, 500),
)

INTERNAL_MESSAGE = "internal error; the server log has the details under this request id"


def status_for(exc: BaseException) -> int:
    """The status ``exc`` is answered with: the first class in the table it is an instance of, else 500."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: BaseException, request_id: str) -> tuple[int, dict[str, Any]]:
    """The status and body for ``exc``; a 5xx never carries more than a code and the request id."""
    status = status_for(exc)
    if status >= 500 and status != 503:
        code = exc.code if isinstance(exc, ShipyardError) else "internal_error"
        return status, {"error": {"code": code, "message": INTERNAL_MESSAGE, "request_id": request_id}}
    code = exc.code if isinstance(exc, ShipyardError) else "error"
    # Messages are written for the log; a body reaches any caller, so it never names a path on the server.
    return status, {"error": {"code": code, "message": without_paths(str(exc)), "request_id": request_id}}
