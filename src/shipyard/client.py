"""``shipyard.Client``: call a Shipyard server over HTTP, with its errors as Shipyard errors."""

from __future__ import annotations

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
            raise _BY_CODE.get(code, _errors.ShipyardError)(f"{message} (HTTP {response.status_code})")
        return response.json()


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
    if isinstance(exc, httpx.RemoteProtocolError) and url.startswith("http://"):
        return f"the Shipyard server at {url} closed the connection; if it serves HTTPS, use an https:// URL"
    return f"cannot reach the Shipyard server at {url}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
