"""Who may call which route: credentials to a principal, and one rule per route, checked before routing.

A pure ASGI middleware, so the check costs one dictionary lookup (the route's rule is cached per path) and
one SHA-256 of the presented secret; keys come from an in-memory ring the server refreshes from the store
every poll interval, so revocation reaches every worker and replica within that interval and the request
path never waits on the database.

Every route has an entry in ``RULES``; the RBAC matrix test reads ``/openapi.json`` and fails for a route
without one. A path that matches no rule (a 404 in the making) still needs valid credentials when auth is on.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from shipyard.core.identity import (
    LOCAL,
    MAX_CREDENTIAL_CHARS,
    Actor,
    ApiKey,
    Permission,
    Principal,
    Role,
    split_key,
)
from shipyard.errors import AuthenticationError, PermissionDeniedError, RateLimitedError, ShipyardError
from shipyard.serving.ratelimit import LIMITED_PATHS, RateLimiter, retry_after_s
from shipyard.serving.rest import request_id_for

log = logging.getLogger("shipyard.auth")

ANONYMOUS = Principal("anonymous", "anonymous", frozenset({Role.ADMIN}))
"""Everyone, on a server started with --insecure and no keys: the audit trail says so."""

OPEN = ()
"""A rule's permissions when the route needs no credentials (health, readiness, the API description)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """What a route needs: any one of ``permissions`` (none: open), on the endpoint or model its path names.

    ``scope`` names the path parameter holding the endpoint (``endpoint:NAME``) or model (``model:NAME``);
    ``unscoped`` routes (creating an endpoint, listing every model) refuse keys limited to some names.
    """

    method: str
    path: str
    permissions: tuple[Permission, ...]
    scope: str | None = None
    unscoped: bool = False

    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\{\w+\})", self.path)
        regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
        return re.compile(f"^{regex}$")


R, P, OP = Permission.READ, Permission.PREDICT, Permission.OPERATE

RULES: tuple[Rule, ...] = (
    # health and the API description: open, so probes and clients can find their way
    Rule("GET", "/healthz", OPEN),
    Rule("GET", "/readyz", OPEN),
    Rule("GET", "/openapi.json", OPEN),
    Rule("GET", "/docs", OPEN),
    Rule("GET", "/docs/oauth2-redirect", OPEN),
    Rule("GET", "/redoc", OPEN),
    Rule("GET", "/v2/health/live", OPEN),
    Rule("GET", "/v2/health/ready", OPEN),
    Rule("GET", "/metrics", (R,)),  # open unless SHIPYARD_METRICS_PUBLIC=false
    # predict, feedback, the Open Inference Protocol
    Rule("POST", "/v1/endpoints/{endpoint}/predict", (P,), scope="endpoint:endpoint"),
    Rule("POST", "/v1/endpoints/{endpoint}/feedback", (P,), scope="endpoint:endpoint"),
    Rule("PUT", "/v1/endpoints/{endpoint}/feedback", (P,), scope="endpoint:endpoint"),
    Rule("GET", "/v2", (R, P)),
    Rule("GET", "/v2/models/{model_name}", (R, P), scope="endpoint:model_name"),
    Rule("GET", "/v2/models/{model_name}/ready", (R, P), scope="endpoint:model_name"),
    Rule("POST", "/v2/models/{model_name}/infer", (P,), scope="endpoint:model_name"),
    Rule("GET", "/v2/models/{model_name}/versions/{model_version}", (R, P), scope="endpoint:model_name"),
    Rule("GET", "/v2/models/{model_name}/versions/{model_version}/ready", (R, P), scope="endpoint:model_name"),
    Rule("POST", "/v2/models/{model_name}/versions/{model_version}/infer", (P,), scope="endpoint:model_name"),
    # the admin API: endpoints and the registry
    Rule("GET", "/v1/endpoints", (R,)),
    Rule("POST", "/v1/endpoints", (OP,), unscoped=True),
    Rule("GET", "/v1/endpoints/{name}", (R,), scope="endpoint:name"),
    Rule("PUT", "/v1/endpoints/{name}", (OP,), scope="endpoint:name"),
    Rule("DELETE", "/v1/endpoints/{name}", (OP,), scope="endpoint:name"),
    Rule("GET", "/v1/models", (R,)),
    Rule("GET", "/v1/models/{ref}", (R,), scope="model:ref"),
    Rule("GET", "/v1/models/{name}/versions", (R,), scope="model:name"),
    Rule("GET", "/v1/models/{name}/versions/{version}/validations", (R,), scope="model:name"),
    # registering code (a pyfunc, trusted=true) also needs Permission.CODE, checked by the route on its metadata
    Rule("POST", "/v1/models/{name}/versions", (OP,), scope="model:name"),
    Rule("PUT", "/v1/models/{name}/aliases/{alias}", (OP,), scope="model:name"),
    Rule("DELETE", "/v1/models/{name}/aliases/{alias}", (OP,), scope="model:name"),
    Rule("POST", "/v1/models/{ref}/archive", (OP,), scope="model:ref"),
    # approvals and the audit trail: governance, so admin only (an operator's key cannot approve its own work)
    Rule("POST", "/v1/models/{ref}/approve", (Permission.ADMIN,), scope="model:ref"),
    Rule("GET", "/v1/audit", (Permission.ADMIN,), unscoped=True),
    Rule("GET", "/v1/audit/verify", (Permission.ADMIN,), unscoped=True),
    # keys: unscoped, so a key limited to some names cannot mint itself one that is not
    Rule("POST", "/v1/keys", (Permission.ADMIN,), unscoped=True),
    Rule("GET", "/v1/keys", (Permission.ADMIN,), unscoped=True),
    Rule("DELETE", "/v1/keys/{name}", (Permission.ADMIN,), unscoped=True),
    # notification channels: where alert details leave the system, so admins declare them
    Rule("POST", "/v1/channels", (Permission.ADMIN,), unscoped=True),
    Rule("GET", "/v1/channels", (Permission.ADMIN,), unscoped=True),
    Rule("DELETE", "/v1/channels/{channel}", (Permission.ADMIN,), unscoped=True),
    Rule("POST", "/v1/channels/{channel}/test", (OP,), unscoped=True),
    # rollouts and monitoring
    Rule("POST", "/v1/endpoints/{endpoint}/rollouts", (OP,), scope="endpoint:endpoint"),
    Rule("GET", "/v1/endpoints/{endpoint}/rollouts/current", (R,), scope="endpoint:endpoint"),
    Rule("POST", "/v1/endpoints/{endpoint}/rollouts/current/promote", (OP,), scope="endpoint:endpoint"),
    Rule("POST", "/v1/endpoints/{endpoint}/rollouts/current/pause", (OP,), scope="endpoint:endpoint"),
    Rule("POST", "/v1/endpoints/{endpoint}/rollouts/current/resume", (OP,), scope="endpoint:endpoint"),
    Rule("POST", "/v1/endpoints/{endpoint}/rollouts/current/abort", (OP,), scope="endpoint:endpoint"),
    Rule("GET", "/v1/endpoints/{endpoint}/monitoring", (R,), scope="endpoint:endpoint"),
    # retraining jobs: opened per endpoint; a job's id names no endpoint, so cancelling one is unscoped
    Rule("POST", "/v1/endpoints/{endpoint}/retrain", (OP,), scope="endpoint:endpoint"),
    Rule("GET", "/v1/jobs", (R,)),
    Rule("GET", "/v1/jobs/{job_id}", (R,)),
    Rule("POST", "/v1/jobs/{job_id}/cancel", (OP,), unscoped=True),
    # alert rules: a rule names its endpoint in its body, so changing rules is unscoped (global operators)
    Rule("GET", "/v1/alerts", (R,)),
    Rule("POST", "/v1/alerts", (OP,), unscoped=True),
    Rule("POST", "/v1/alerts/apply", (OP,), unscoped=True),
    Rule("GET", "/v1/alerts/{name}", (R,)),
    Rule("DELETE", "/v1/alerts/{name}", (OP,), unscoped=True),
    Rule("GET", "/v1/alerts/{name}/history", (R,)),
    Rule("GET", "/v1/alerts/{name}/test", (R,)),
    Rule("POST", "/v1/alerts/{name}/silence", (OP,), unscoped=True),
    Rule("POST", "/v1/alerts/{name}/unsilence", (OP,), unscoped=True),
    Rule("POST", "/v1/alerts/{name}/ack", (OP,), unscoped=True),
    # request tracing: the endpoint is in the query or found in the log, so the route checks the scope
    Rule("GET", "/v1/requests/{request_id}", (R,)),
)

_WWW_AUTHENTICATE = 'Bearer realm="shipyard"'


def _model_name(ref: str) -> str:
    """``fraud:3`` and ``fraud@champion`` are scoped by the model's name."""
    return re.split(r"[:@]", ref, maxsplit=1)[0]


TokenVerifier = Callable[[str], Principal]
"""Turns a bearer token that is not a Shipyard key (an SSO JWT) into a principal, or raises AuthenticationError."""


class Authenticator:
    """The key ring, whether auth is on, and credentials to a principal. Refreshed off the request path."""

    def __init__(
        self,
        *,
        required: bool,
        loopback: bool = True,
        token_verifier: TokenVerifier | None = None,
        metrics_public: bool = True,
    ) -> None:
        self.required = required
        self.loopback = loopback
        self.token_verifier = token_verifier
        self.metrics_public = metrics_public
        self.ring: Mapping[str, ApiKey] = {}
        # Keys already checked, by their full text: a repeat caller costs one lookup, not a hash. Emptied
        # whenever the ring changes (a revocation), and each entry still honours its key's expiry.
        self._verified: dict[str, tuple[Principal, float]] = {}

    @property
    def enabled(self) -> bool:
        """On when required, when any key exists, or when SSO tokens are accepted; off only for one user."""
        return self.required or bool(self.ring) or self.token_verifier is not None

    @property
    def open_principal(self) -> Principal:
        return LOCAL if self.loopback else ANONYMOUS

    def load(self, ring: Mapping[str, ApiKey]) -> None:
        """Swap in a fresh ring (one assignment: requests see the old or the new one, never a mix)."""
        fresh = dict(ring)
        if fresh != self.ring:
            self.ring = fresh
            self._verified = {}

    def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        token = _credential(authorization, api_key)
        hit = self._verified.get(token)
        if hit is not None and time.time() < hit[1]:
            return hit[0]
        parts = split_key(token)
        if parts is not None:
            key = self.ring.get(parts[0])
            if key is None or not key.matches(parts[1]):
                log.info("refused a key with id %s: unknown id or wrong secret", parts[0])
                raise AuthenticationError("invalid credentials")
            if not key.usable_at(datetime.now(UTC)):
                log.info("refused key %r: %s", key.name, "revoked" if key.revoked_at else "expired")
                raise AuthenticationError("invalid credentials: the key is revoked or expired")
            principal = key.principal()
            if len(self._verified) < 10_000:  # only keys that verified get in, so no caller can flood it
                expires = key.expires_at.timestamp() if key.expires_at is not None else math.inf
                self._verified[token] = (principal, expires)
            return principal
        if token.startswith("shy_"):
            raise AuthenticationError("invalid credentials: a Shipyard key looks like shy_<id>_<secret>")
        if self.token_verifier is not None and token.count(".") == 2:
            return self.token_verifier(token)
        raise AuthenticationError("invalid credentials")


def _credential(authorization: str | None, api_key: str | None) -> str:
    """The one credential presented, from ``Authorization: Bearer`` or ``X-API-Key``."""
    token: str | None = None
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationError("malformed Authorization header; send 'Authorization: Bearer <key or token>'")
        token = value.strip()
    if api_key is not None:
        if token is not None and api_key.strip() != token:
            raise AuthenticationError("send one credential: Authorization and X-API-Key differ")
        token = api_key.strip()
    if not token:
        raise AuthenticationError("credentials required; send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    if len(token) > MAX_CREDENTIAL_CHARS:
        raise AuthenticationError(f"credential over {MAX_CREDENTIAL_CHARS} characters")
    return token


class _Router:
    """Path to (rule, path parameters), cached per path: predict paths repeat, so the regexes run once each."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = [(rule, rule.pattern()) for rule in rules]
        self.cache: dict[tuple[str, str], tuple[Rule | None, dict[str, str]]] = {}

    def match(self, method: str, path: str) -> tuple[Rule | None, dict[str, str]]:
        key = (method, path)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        found: tuple[Rule | None, dict[str, str]] = (None, {})
        lookup = "GET" if method == "HEAD" else method
        for rule, pattern in self.rules:
            matched = pattern.match(path) if rule.method == lookup else None
            if matched is not None:
                found = (rule, matched.groupdict())
                break
        if len(self.cache) < 10_000:  # bounded: a scan of random paths cannot grow it without end
            self.cache[key] = found
        return found


def check(principal: Principal, rule: Rule | None, params: Mapping[str, str]) -> None:
    """Raise PermissionDeniedError unless ``principal`` may call the route ``rule`` describes."""
    if rule is None:
        return  # no route: routing answers 404/405 for an authenticated caller
    endpoint = model = None
    if rule.scope is not None:
        kind, _, param = rule.scope.partition(":")
        value = params.get(param, "")
        if kind == "endpoint":
            endpoint = value
        else:
            model = _model_name(value)
    if rule.unscoped and (principal.endpoints is not None or principal.models is not None):
        raise PermissionDeniedError(f"{rule.method} {rule.path} needs a key that is not limited to some names")
    if not any(principal.allows(p, endpoint=endpoint, model=model) for p in rule.permissions):
        needed = " or ".join(p.value for p in rule.permissions)
        where = f" on endpoint {endpoint!r}" if endpoint else (f" on model {model!r}" if model else "")
        raise PermissionDeniedError(f"{principal.label} may not {rule.method} {rule.path}: needs {needed}{where}")


class AuthMiddleware:
    """Authenticate, authorise, and leave the caller's ``Actor`` in ``scope['state']`` for the routes."""

    def __init__(
        self,
        app: Any,
        authenticator: Authenticator,
        rules: tuple[Rule, ...] = RULES,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.router = _Router(rules)
        self.limiter = limiter

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        auth = self.authenticator
        rule, params = self.router.match(scope["method"], scope["path"])
        headers = _headers(scope)
        client = scope.get("client")
        address = client[0] if client else None
        request_id = request_id_for(headers.get("x-request-id"))
        if (
            rule is not None and (rule.permissions == OPEN or (rule.path == "/metrics" and auth.metrics_public))
        ) or not auth.enabled:
            principal = auth.open_principal
        else:
            limiter = self.limiter
            try:
                if limiter is not None and address is not None:
                    limiter.check_address(address)  # brute force: refused before its credentials are looked at
                principal = auth.authenticate(headers.get("authorization"), headers.get("x-api-key"))
                check(principal, rule, params)
            except ShipyardError as exc:
                presented = "authorization" in headers or "x-api-key" in headers
                if isinstance(exc, AuthenticationError) and presented and limiter is not None and address:
                    limiter.failed(address)
                await _refuse(send, scope["path"], exc, request_id)
                return
        if self.limiter is not None and rule is not None and rule.path in LIMITED_PATHS and rule.scope:
            try:
                self.limiter.admit(params.get(rule.scope.partition(":")[2], ""), caller=principal.label)
            except RateLimitedError as exc:
                await _refuse(send, scope["path"], exc, request_id)
                return
        scope.setdefault("state", {})["actor"] = Actor(principal, address, request_id)
        await self.app(scope, receive, send)


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    wanted = (b"authorization", b"x-api-key", b"x-request-id")
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in wanted}


async def _refuse(send: Any, path: str, exc: ShipyardError, request_id: str) -> None:
    status = 401 if isinstance(exc, AuthenticationError) else 429 if isinstance(exc, RateLimitedError) else 403
    body: Any = {"error": {"code": exc.code, "message": exc.message, "request_id": request_id}}
    if path.startswith("/v2/"):
        body = {"error": exc.message}  # the Open Inference Protocol's error shape
    headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
    if status == 401:
        headers.append((b"www-authenticate", _WWW_AUTHENTICATE.encode()))
    if isinstance(exc, RateLimitedError):
        headers.append((b"retry-after", str(retry_after_s(exc.retry_after_s)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


def actor_of(request: Any) -> Actor:
    """The caller of a route, as the middleware left it (LOCAL when a route runs without the middleware)."""
    actor = getattr(request.state, "actor", None)
    return actor if isinstance(actor, Actor) else Actor(LOCAL)
