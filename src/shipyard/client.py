"""``shipyard.Client``: call a Shipyard server over HTTP, with its errors as Shipyard errors."""

from __future__ import annotations

import hashlib
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from shipyard import errors as _errors

if TYPE_CHECKING:
    from shipyard.config import Settings

CLIENT_HEADER = "X-Shipyard-Client"
"""Sent on every call: a header no HTML form or plain cross-site ``fetch`` can add without a CORS preflight, so
the server knows a bodyless move (rollout promote, endpoint delete) comes from a client, not a foreign web page."""

_BY_CODE: dict[str, type[_errors.ShipyardError]] = {
    cls.code: cls for cls in vars(_errors).values() if isinstance(cls, type) and issubclass(cls, _errors.ShipyardError)
}


@dataclass(frozen=True, slots=True)
class PredictResult:
    """What the server answered: predictions, probabilities for classifiers, and which version served."""

    predictions: list[Any]
    request_id: str
    model: str
    version: int
    probabilities: list[list[float]] | None = None
    classes: list[Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"


class Client:
    """A thin client; keep one per process so connections are reused."""

    def __init__(
        self,
        url: str,
        api_key: str | SecretStr | None = None,
        *,
        timeout_s: float = 30.0,
        ca_file: str | Path | None = None,
        verify: bool = True,
    ) -> None:
        """``ca_file``: a PEM bundle of the CA that signed a private server certificate (else the system's CAs).

        ``verify=False`` turns certificate checks off altogether: for a throwaway test server only.
        """
        secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._has_key = bool(secret)
        headers = {CLIENT_HEADER: "1", **({"Authorization": f"Bearer {secret}"} if secret else {})}
        self.url = url.rstrip("/")
        tls = _tls_context(ca_file) if verify else False
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s, verify=tls)

    @classmethod
    def from_settings(cls, settings: Settings, *, url: str | None = None, timeout_s: float = 30.0) -> Client:
        """The client the CLI uses: ``url`` or SHIPYARD_URL, with SHIPYARD_API_KEY and SHIPYARD_CA_FILE."""
        target = url or settings.url
        if not target:
            raise _errors.ConfigError("no server URL: pass --url or set SHIPYARD_URL")
        return cls(target, api_key=settings.api_key, timeout_s=timeout_s, ca_file=settings.ca_file)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def predict(
        self, endpoint: str, rows: Any, *, request_id: str | None = None, routing_key: str | None = None
    ) -> PredictResult:
        """Predict on rows (a list of objects) or columns (a dict of lists)."""
        body = {"inputs": rows} if isinstance(rows, dict) else {"instances": rows}
        headers = {}
        if request_id:
            headers["X-Request-ID"] = request_id
        if routing_key:
            headers["X-Routing-Key"] = routing_key
        data = self._call("POST", f"/v1/endpoints/{endpoint}/predict", json=body, headers=headers)
        return PredictResult(
            predictions=data["predictions"],
            request_id=data["request_id"],
            model=data["model"],
            version=int(data["version"]),
            probabilities=data.get("probabilities"),
            classes=data.get("classes"),
        )

    def monitoring(self, endpoint: str, *, window: str = "1h", version: str | None = None) -> dict[str, Any]:
        """The monitoring report of ``endpoint`` over ``window`` (e.g. 30m, 1h, 7d, all)."""
        params = {"window": window, **({"version": version} if version else {})}
        return dict(self._call("GET", f"/v1/endpoints/{endpoint}/monitoring", params=params))

    def trace(self, request_id: str, *, endpoint: str | None = None) -> dict[str, Any]:
        """The trace of one request: version, artifact, data hash, commit, rows, feedback, rollout state."""
        params = {"endpoint": endpoint} if endpoint else {}
        return dict(self._call("GET", f"/v1/requests/{quote(request_id, safe='')}", params=params))

    # --- the registry ---------------------------------------------------------------------------------------

    def register(
        self, path: str | Path, name: str, *, metadata: dict[str, Any] | None = None, timeout_s: float = 600.0
    ) -> dict[str, Any]:
        """Upload a model file as the next version of ``name``; returns its card.

        The file streams from disk with its SHA-256 in ``X-Content-SHA256`` (the server refuses a mismatch);
        ``metadata`` holds what ``shipyard models register`` takes besides the file (see the server's
        ``RegistrationMetadata``). ``timeout_s``: how long the server may take to check and profile it.
        """
        file = Path(path)
        digest = _sha256_of(file)
        headers = {"X-Content-SHA256": digest}
        form = {"metadata": json.dumps(metadata or {}, default=str)}
        with file.open("rb") as stream:
            files = {"file": (file.name, stream, "application/octet-stream")}
            return dict(
                self._call(
                    "POST",
                    f"/v1/models/{_seg(name)}/versions",
                    data=form,
                    files=files,
                    headers=headers,
                    timeout=httpx.Timeout(self._http.timeout.connect, read=timeout_s, write=timeout_s, pool=None),
                )
            )

    def models(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/models"))

    def versions(self, name: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/v1/models/{_seg(name)}/versions"))

    def model(self, ref: str) -> dict[str, Any]:
        """A version's card: ``fraud:3``, ``fraud@champion`` or ``fraud`` (the latest)."""
        return dict(self._call("GET", f"/v1/models/{_seg(ref)}"))

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        body = {"version": version}
        return dict(self._call("PUT", f"/v1/models/{_seg(name)}/aliases/{_seg(alias)}", json=body))

    def remove_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", f"/v1/models/{_seg(name)}/aliases/{_seg(alias)}")

    def approve(self, ref: str, *, reason: str = "") -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/models/{_seg(ref)}/approve", json={"reason": reason}))

    def archive(self, ref: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/models/{_seg(ref)}/archive"))

    # --- endpoints and rollouts ------------------------------------------------------------------------------

    def endpoints(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/endpoints"))

    def endpoint(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/endpoints/{_seg(name)}"))

    def create_endpoint(
        self,
        name: str,
        *,
        model: str,
        strict: bool = False,
        require_approval: bool = False,
        require_validation: bool = False,
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "model": model,
            "strict": strict,
            "require_approval": require_approval,
            "require_validation": require_validation,
        }
        return dict(self._call("POST", "/v1/endpoints", json=body))

    def update_endpoint(
        self,
        name: str,
        *,
        model: str,
        strict: bool | None = None,
        require_approval: bool | None = None,
        require_validation: bool | None = None,
    ) -> dict[str, Any]:
        body = {
            "model": model,
            "strict": strict,
            "require_approval": require_approval,
            "require_validation": require_validation,
        }
        return dict(self._call("PUT", f"/v1/endpoints/{_seg(name)}", json=body))

    def validations(self, name: str, version: int, *, limit: int = 20) -> list[dict[str, Any]]:
        """A version's validation runs (``shipyard validate``), newest first."""
        path = f"/v1/models/{_seg(name)}/versions/{int(version)}/validations"
        return list(self._call("GET", path, params={"limit": limit})["validations"])

    def delete_endpoint(self, name: str) -> None:
        self._call("DELETE", f"/v1/endpoints/{_seg(name)}")

    def start_rollout(self, endpoint: str, *, to: str, strategy: str, **options: Any) -> dict[str, Any]:
        """Options as ``POST /v1/endpoints/{endpoint}/rollouts`` takes them (steps, interval_s, gates, ...)."""
        body = {"to": to, "strategy": strategy, **options}
        return dict(self._call("POST", f"/v1/endpoints/{_seg(endpoint)}/rollouts", json=body))

    def rollout(self, endpoint: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/endpoints/{_seg(endpoint)}/rollouts/current"))

    def move_rollout(self, endpoint: str, move: str, *, reason: str = "") -> dict[str, Any]:
        """``promote``, ``pause``, ``resume`` or ``abort`` (with ``reason``) the endpoint's rollout."""
        body = {"reason": reason} if move == "abort" else None
        path = f"/v1/endpoints/{_seg(endpoint)}/rollouts/current/{_seg(move)}"
        return dict(self._call("POST", path, json=body))

    # --- keys and the audit trail (admin) --------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        *,
        role: str,
        endpoints: list[str] | None = None,
        models: list[str] | None = None,
        expires_in_s: str | float | None = None,
    ) -> dict[str, Any]:
        """A new key; ``secret`` in the answer is its only copy."""
        body = {"name": name, "role": role, "endpoints": endpoints, "models": models, "expires_in_s": expires_in_s}
        return dict(self._call("POST", "/v1/keys", json=body))

    def list_keys(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/keys"))

    def revoke_key(self, name: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/v1/keys/{_seg(name)}"))

    def audit(self, *, target: str | None = None, since: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, **({"target": target} if target else {})}
        if since:
            params["since"] = since
        return list(self._call("GET", "/v1/audit", params=params))

    def verify_audit(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/audit/verify"))

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise _errors.ServerUnreachableError(_unreachable(self.url, exc)) from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "error", response.text[:200]
            if response.status_code == 401 and not self._has_key:
                message += "; set SHIPYARD_API_KEY to a key (shipyard keys create) for this server"
            raise _BY_CODE.get(code, _errors.ShipyardError)(f"{message} (HTTP {response.status_code})")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def _seg(value: str) -> str:
    """One path segment: a name with a slash or ``..`` in it stays one segment, never another route."""
    return quote(value, safe="@:")


def _sha256_of(file: Path) -> str:
    """The file's SHA-256, read in blocks (a model file may be gigabytes); one line naming a file not there."""
    digest = hashlib.sha256()
    try:
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise _errors.InvalidArgumentError(f"cannot read model file {file}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _tls_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """Verify servers against the system's CAs, or against ``ca_file`` alone (a private CA)."""
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _errors.ConfigError(f"cannot use CA file {ca_file} (--ca-file / SHIPYARD_CA_FILE): {reason}") from None


def _unreachable(url: str, exc: httpx.HTTPError) -> str:
    """One line: a certificate the client does not trust is named as such, with the fix."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or cause.reason or "verification failed"
        return (
            f"the certificate of the Shipyard server at {url} is not trusted ({reason}); "
            "pass --ca-file (or set SHIPYARD_CA_FILE) naming the CA that signed it"
        )
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # A TLS port answers plain HTTP by closing the connection or, when the close races the request's bytes,
    # by resetting it (a ReadError): either way the likely fix is the scheme.
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) and url.startswith("http://"):
        return f"the Shipyard server at {url} closed the connection ({detail}); if it serves HTTPS, use an https:// URL"
    return f"cannot reach the Shipyard server at {url}: {detail}"
