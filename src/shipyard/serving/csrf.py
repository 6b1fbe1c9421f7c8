"""Cross-site requests: a web page open in a browser must not be able to change anything on a Shipyard server.

Any page can make a browser send a "simple" request to any address, localhost included, without asking the
server first: a form post (form-encoded, multipart or text/plain) or a ``fetch`` with no custom header. The
page cannot read the answer, but the change is made. Anything else (a JSON content type, a custom header)
makes the browser send a CORS preflight first, which fails unless ``SHIPYARD_CORS_ORIGINS`` names the page's
origin. So a mutating request (POST, PUT, PATCH, DELETE) gets through only with

- a body of type ``application/json`` (the V2 infer routes also take ``application/octet-stream``; they and
  REST predict also take no type at all, which is what Triton's clients and ``curl --data-binary`` send:
  a prediction changes nothing but the log and the rate-limit buckets), or
- no body and the header ``X-Shipyard-Client`` (the Python client and the CLI always send it), or
- for a model upload (``POST /v1/models/{name}/versions``), ``multipart/form-data`` with the header
  ``X-Content-SHA256`` that the upload needs anyway,

and is otherwise refused with 415 before any route runs. Health checks and reads (GET, HEAD) are untouched.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from shipyard.serving.rest import request_id_for

CLIENT_HEADER = b"x-shipyard-client"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"
BINARY = "application/octet-stream"
MULTIPART = "multipart/form-data"
UPLOAD_PATH = re.compile(r"^/v1/models/[^/]+/versions$")
DIGEST_HEADER = b"x-content-sha256"


class CrossSiteGuard:
    """Refuse mutating requests that a foreign web page could have made (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        problem = refusal(scope["path"], dict(scope["headers"]))
        if problem is None:
            await self.app(scope, receive, send)
            return
        await _refuse(send, scope, problem)


def refusal(path: str, headers: dict[bytes, bytes]) -> str | None:
    """Why a mutating request to ``path`` with these (lower-case) headers is refused, or None to let it in."""
    v2_infer = path.startswith("/v2/models/") and path.endswith("/infer")
    raw_type = headers.get(b"content-type")
    if raw_type is not None:
        media_type = raw_type.decode("latin-1").split(";", 1)[0].strip().lower()
        if media_type == JSON or (v2_infer and media_type == BINARY):
            return None
        # A model upload is a form post, which a page could send, but not with the digest header it needs.
        if media_type == MULTIPART and UPLOAD_PATH.match(path) and DIGEST_HEADER in headers:
            return None
        allowed = f"{JSON} or {BINARY}" if v2_infer else JSON
        shown = media_type[:60] or "(empty)"
        return f"Content-Type {shown} is not accepted here; send the body as {allowed}"
    if v2_infer or path.endswith("/predict"):
        return None  # the data plane: Triton's clients send JSON and binary tensors without a Content-Type
    length = headers.get(b"content-length", b"0").strip()
    if b"transfer-encoding" in headers or not length.isdigit() or int(length) > 0:
        return f"a request body needs Content-Type: {JSON}"
    if CLIENT_HEADER in headers:
        return None
    return (
        f"a request without a body needs the header 'X-Shipyard-Client: 1' or Content-Type: {JSON} "
        "(so that a web page cannot send it from a browser)"
    )


async def _refuse(send: Any, scope: dict[str, Any], message: str) -> None:
    request_id = request_id_for(dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1") or None)
    body: Any = {"error": {"code": "unsupported_media_type", "message": message, "request_id": request_id}}
    if scope["path"].startswith("/v2/"):
        body = {"error": message}  # the Open Inference Protocol's error shape
    headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
    await send({"type": "http.response.start", "status": 415, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
