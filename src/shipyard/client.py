"""``shipyard.Client``: call a Shipyard server over HTTP, with its errors as Shipyard errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from shipyard import errors as _errors

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

    def __init__(self, url: str, api_key: str | None = None, *, timeout_s: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

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
            raise _errors.ServerUnreachableError(f"cannot reach the Shipyard server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "error", response.text[:200]
            raise _BY_CODE.get(code, _errors.ShipyardError)(f"{message} (HTTP {response.status_code})")
        return response.json()
