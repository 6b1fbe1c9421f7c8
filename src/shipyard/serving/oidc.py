"""SSO bearer tokens (OIDC JWTs): checked against the issuer's published keys and mapped to Shipyard roles.

Why it is shaped this way:

- **The request path never waits on the network.** The issuer's key set (JWKS) is fetched before the server
  lets requests in and again every ``REFRESH_S`` in the background. A token naming a key id that is not in
  the set wakes that background refresh at once and is refused meanwhile (the client's retry a moment later
  gets in). Such wake-ups are limited to one per ``UNKNOWN_KEY_REFRESH_S``, so tokens with made-up key ids
  cannot make the server hammer the issuer; issuers publish a new key before signing with it, so in practice
  the periodic refresh already holds it.
- **Only asymmetric signatures, and only the algorithm the key is bound to.** ``none``, ``HS*`` (a public
  key used as an HMAC secret) and a key of one type presented with another algorithm are refused before any
  signature is computed; symmetric keys in a JWKS are ignored.
- **A verified token is remembered by its exact text until it expires**, so a client reusing its token
  costs one dictionary lookup (the ``auth`` benchmark's JWT row), not a signature check. The memory is
  emptied whenever the key set changes: a key the issuer withdraws stops working at the next refresh.
- **Refusals say what a client can act on** (expired, another audience, unknown key) in one line, and never
  echo the token, its claims or what the server expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import orjson

from shipyard.core.identity import Principal, Role
from shipyard.errors import AuthenticationError

if TYPE_CHECKING:
    from shipyard.config import Settings

log = logging.getLogger("shipyard.auth")

ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
"""The signatures accepted: public-key ones only, so no secret shared with the issuer can be guessed or leaked."""

REFRESH_S = 300.0
RETRY_S = 10.0
"""Key sets are re-read every five minutes, and every ten seconds while the issuer cannot be reached."""
UNKNOWN_KEY_REFRESH_S = 30.0
FETCH_TIMEOUT_S = 5.0
MAX_DOCUMENT_BYTES = 1 << 20
MAX_CACHED_TOKENS = 10_000

Fetch = Callable[[str], Awaitable[Any]]
"""GET a URL and return its JSON: the issuer's discovery document or key set."""


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """What a token must say to be accepted, and how its groups become roles."""

    issuer: str
    audience: str
    jwks_url: str | None
    roles_claim: str
    role_map: Mapping[str, Role]
    leeway_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """None when SSO is not configured (the settings already refuse an issuer without audience or map)."""
        if settings.oidc_issuer is None or settings.oidc_audience is None:
            return None
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            roles_claim=settings.oidc_roles_claim,
            role_map={value: Role(role) for value, role in settings.oidc_role_specs().items()},
            leeway_s=settings.oidc_leeway_s,
        )

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def roles_from_claims(claims: Mapping[str, Any], claim: str, role_map: Mapping[str, Role]) -> frozenset[Role]:
    """The roles a token's claim grants: a list of strings or one space-separated string, looked up in the map.

    ``claim`` is a claim name (namespaced URLs with dots included) or, when no claim has that name, a dotted
    path into nested objects (Keycloak's ``realm_access.roles``).
    """
    value: Any = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        return frozenset()
    return frozenset(role_map[v] for v in value if isinstance(v, str) and v in role_map)


def usable_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """A JWKS document's signing keys by key id; symmetric, encryption-only and malformed keys are skipped.

    A key without ``kid`` is filed under ``""``, used only by tokens without one.
    """
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError('not a JWK set: expected an object with a "keys" list')
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            log.info("skipped key %r of the SSO key set: %s", entry.get("kid"), exc)
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[str(entry.get("kid", ""))] = key
    return keys


async def fetch_json(url: str) -> Any:
    """GET ``url`` without following redirects (the issuer names its own URLs); refuse a body over 1 MiB."""
    async with (
        httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client,
        client.stream("GET", url, headers={"Accept": "application/json"}) as response,
    ):
        if response.status_code != 200:
            raise ValueError(f"GET {url} answered {response.status_code}")
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"GET {url} sent more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"GET {url} did not answer JSON: {exc}") from None


# What each PyJWT refusal tells the client: enough to act on (get a fresh token, ask for the right audience).
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is for another audience"),
    (jwt.InvalidIssuerError, "the token is from another issuer"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim (exp, sub, iss or aud)"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm does not match its key"),
)


class OidcVerifier:
    """The ``Authenticator``'s token verifier: a JWT to a principal, or an AuthenticationError with one line.

    Called on the event loop for every request bearing a token; ``run`` keeps the key set current beside it.
    """

    def __init__(
        self,
        config: OidcConfig,
        *,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.fetch = fetch
        self.clock = clock
        self.monotonic = monotonic
        self.keys: Mapping[str, jwt.PyJWK] = {}
        self.fetches = 0
        self._jwks_url = config.jwks_url
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._fingerprint = b""
        self._last_wake = -UNKNOWN_KEY_REFRESH_S
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # --- the key set, kept current off the request path ------------------------------------------------------

    async def refresh(self) -> bool:
        """Fetch the key set (discovering its URL once) and swap it in; on failure keep the last one and say so."""
        try:
            if self._jwks_url is None:
                self._jwks_url = await self._discover()
            self.fetches += 1
            document = await self.fetch(self._jwks_url)
            keys = usable_keys(document)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning(
                "could not refresh the SSO signing keys of %s, keeping the last ones: %s", self.config.issuer, exc
            )
            return False
        if not keys:
            log.warning("the SSO key set of %s holds no usable signing key; keeping the last ones", self.config.issuer)
            return False
        if keys.keys() != self.keys.keys():
            log.info("SSO signing keys of %s: %s", self.config.issuer, ", ".join(sorted(keys)) or "(no kid)")
        fingerprint = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        if fingerprint != self._fingerprint:
            self._verified = {}  # a withdrawn key's tokens must not live on in the cache
        self.keys, self._fingerprint = keys, fingerprint
        return True

    async def _discover(self) -> str:
        document = await self.fetch(self.config.discovery_url)
        if not isinstance(document, dict) or document.get("issuer") != self.config.issuer:
            raise ValueError(f"{self.config.discovery_url} names another issuer than {self.config.issuer!r}")
        url = document.get("jwks_uri")
        if not isinstance(url, str) or not (url.startswith("https://") or _loopback_http(url)):
            raise ValueError(f"{self.config.discovery_url} gives no https jwks_uri")
        return url

    async def run(self) -> None:
        """Refresh every REFRESH_S (RETRY_S while failing), or at once when a token named an unknown key."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        delay = REFRESH_S if self.keys else RETRY_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            delay = REFRESH_S if await self.refresh() else RETRY_S

    def _request_refresh(self) -> None:
        """Wake ``run`` for a key id not in the set, at most once per UNKNOWN_KEY_REFRESH_S."""
        now = self.monotonic()
        if self._loop is None or self._wake is None or now - self._last_wake < UNKNOWN_KEY_REFRESH_S:
            return
        self._last_wake = now
        self._loop.call_soon_threadsafe(self._wake.set)

    # --- the request path ---------------------------------------------------------------------------------------

    def __call__(self, token: str) -> Principal:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires_at = remembered
            if self.clock() < expires_at + self.config.leeway_s:
                return principal
            del self._verified[token]
        principal, expires_at = self._verify(token)
        if len(self._verified) >= MAX_CACHED_TOKENS:
            self._verified = {}  # bounded: only verified tokens get here, but each client may hold many
        self._verified[token] = (principal, expires_at)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refused("malformed token") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            shown = algorithm if isinstance(algorithm, str) and len(algorithm) <= 16 else "?"
            raise _refused(
                f"token algorithm {shown!r} is not accepted; the issuer's tokens are signed with a public key"
            )
        kid = header.get("kid", "")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            self._request_refresh()
            raise _refused("the token is signed by a key this server does not know (yet); retry shortly")
        if key.algorithm_name != algorithm:
            raise _refused("the token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), "invalid token")
            raise _refused(reason) from None
        return self._principal(claims), float(claims["exp"])

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        """Named by the token's email when it has one (what the audit trail's readers know), else its subject."""
        email = claims.get("email")
        name = email if isinstance(email, str) and email else claims.get("sub")
        if not isinstance(name, str) or not name or len(name) > 256 or not name.isprintable():
            raise _refused("the token's subject is not a printable name of up to 256 characters")
        roles = roles_from_claims(claims, self.config.roles_claim, self.config.role_map)
        return Principal(name, "token", roles)


def _refused(reason: str) -> AuthenticationError:
    log.info("refused an SSO token: %s", reason)
    return AuthenticationError(f"invalid credentials: {reason}")


def _loopback_http(url: str) -> bool:
    host = httpx.URL(url).host
    return url.startswith("http://") and host in ("127.0.0.1", "localhost", "::1")
