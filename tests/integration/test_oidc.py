"""SSO bearer tokens on a real server, against an issuer on 127.0.0.1 whose keys the test generates.

The issuer is a small HTTP server publishing a discovery document and a key set; tokens are signed here with
PyJWT and the test's private keys. Every way a token can be wrong gets a 401 with one short line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shipyard.config import Settings
from shipyard.errors import InvalidArgumentError
from shipyard.serving.server import check_exposure
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import ServerUrl, free_port, running_server

ROW = {"instances": [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]}
AUDIENCE = "shipyard-test"
ROLE_MAP = {"ml-apps": "predictor", "ml-viewers": "viewer", "ml-admins": "admin"}


@dataclass
class Issuer:
    """An OpenID provider's public side: discovery and JWKS over HTTP, and private keys to sign tokens with."""

    url: str = ""
    private: dict[str, Any] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)

    def add_key(self, kid: str, kind: str = "rsa", *, publish: bool = True) -> None:
        self.private[kid] = (
            rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
        )
        if publish:
            self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            public = self.private[kid].public_key()
            if isinstance(public, rsa.RSAPublicKey):
                jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
            else:
                jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def token(self, kid: str = "rsa-1", *, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "u-123",
            "email": "alice@example.com",
            "groups": ["ml-apps"],
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        algorithm = "RS256" if isinstance(self.private[kid], rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(body, self.private[kid], algorithm=algorithm, headers={"kid": kid, **(headers or {})})

    def public_pem(self, kid: str) -> bytes:
        return (
            self.private[kid]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    state = Issuer()
    state.add_key("rsa-1")
    state.add_key("ec-1", "ec")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            if self.path == "/.well-known/openid-configuration":
                body: Any = {"issuer": state.url, "jwks_uri": f"{state.url}/jwks.json"}
            elif self.path == "/jwks.json":
                body = state.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _sso_settings(settings: Settings, issuer_url: str) -> Settings:
    return settings.model_copy(
        update={
            "oidc_issuer": issuer_url,
            "oidc_audience": AUDIENCE,
            "oidc_role_map": json.dumps(ROLE_MAP, sort_keys=True),
            "poll_interval_s": 0.2,
        }
    )


@pytest.fixture
def served(settings: Settings, workspace: Workspace, issuer: Issuer) -> Iterator[ServerUrl]:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    with running_server(_sso_settings(settings, issuer.url), workspace) as url:
        yield url


def _predict(url: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(f"{url}/v1/endpoints/iris/predict", json=ROW, headers=headers, timeout=10)


def _eventually(check: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the server did not pick up the issuer's new keys"
        time.sleep(0.1)


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_token_with_a_mapped_group_gets_that_role(served: ServerUrl, issuer: Issuer, kid: str) -> None:
    assert _predict(served).status_code == 401  # SSO configured: auth is on without any API key
    answer = _predict(served, issuer.token(kid))
    assert answer.status_code == 200, answer.text
    viewer = issuer.token(kid, groups=["ml-viewers", "unrelated"])
    refused = _predict(served, viewer)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"].startswith("token:alice@example.com may not POST")
    assert httpx.get(f"{served}/v1/endpoints", headers={"authorization": f"Bearer {viewer}"}).status_code == 200


def test_a_token_without_a_mapped_group_is_authenticated_but_may_do_nothing(served: ServerUrl, issuer: Issuer) -> None:
    for groups in (["everyone"], [], None):
        token = issuer.token(groups=groups, email=None)
        response = _predict(served, token)
        assert response.status_code == 403, groups
        assert "token:u-123 may not POST" in response.json()["error"]["message"]
    nested = issuer.token(groups=None, realm_access={"roles": ["ml-apps"]})
    assert _predict(served, nested).status_code == 403  # the claim read is "groups", not a nested path


def test_each_bad_token_is_a_one_line_401(served: ServerUrl, issuer: Issuer) -> None:
    now = int(time.time())
    good = issuer.token()
    header, payload, signature = good.split(".")
    raised = _b64(json.dumps({**json.loads(_unb64(payload)), "groups": ["ml-admins"]}).encode())
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    hs_signature = _b64(
        hmac.new(issuer.public_pem("rsa-1"), f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
    )
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    issuer.add_key("stray", publish=False)
    cases = {
        "expired": (issuer.token(exp=now - 120, iat=now - 900, nbf=now - 900), "has expired"),
        "not yet valid": (issuer.token(nbf=now + 300), "not valid yet"),
        "wrong audience": (issuer.token(aud="another-app"), "another audience"),
        "wrong issuer": (issuer.token(iss="https://evil.example"), "another issuer"),
        "no expiry": (issuer.token(exp=None), "lacks a required claim"),
        "unknown key": (issuer.token("stray"), "key this server does not know"),
        "alg none": (f"{none_header}.{payload}.", "algorithm 'none' is not accepted"),
        "HS256 with the public key as secret": (f"{hs_header}.{payload}.{hs_signature}", "'HS256' is not accepted"),
        "tampered payload": (f"{header}.{raised}.{signature}", "signature does not verify"),
        "RSA key claimed as ES256": (
            f"{_b64(json.dumps({'alg': 'ES256', 'kid': 'rsa-1'}).encode())}.{payload}.{signature}",
            "does not match its key",
        ),
        "garbage": ("abc.def.ghi", "malformed token"),
    }
    for case, (token, reason) in cases.items():
        response = _predict(served, token)
        assert response.status_code == 401, (case, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer"), case
        message = response.json()["error"]["message"]
        assert reason in message, (case, message)
        assert len(message) < 120 and "\n" not in message, case
        assert token not in message and "alice" not in message and AUDIENCE not in message, case
    assert _predict(served, good).status_code == 200  # the good one, after all that, still works


def test_a_token_expired_within_the_leeway_is_still_accepted(served: ServerUrl, issuer: Issuer) -> None:
    now = int(time.time())
    assert _predict(served, issuer.token(exp=now - 10, iat=now - 600, nbf=now - 600)).status_code == 200


def test_a_new_key_is_fetched_on_first_sight_and_refreshes_are_rate_limited(served: ServerUrl, issuer: Issuer) -> None:
    fetched = issuer.hits["/jwks.json"]
    assert fetched == 1 and issuer.hits["/.well-known/openid-configuration"] == 1  # once, at start-up
    issuer.add_key("rsa-2")  # the issuer rotates: a new key appears in its set
    token = issuer.token("rsa-2")
    first = _predict(served, token)
    assert first.status_code == 401 and "retry shortly" in first.json()["error"]["message"]
    _eventually(lambda: _predict(served, token).status_code == 200)
    assert issuer.hits["/jwks.json"] == fetched + 1  # the unknown key id triggered exactly one refresh
    # a burst of made-up key ids within the rate limit: all refused, and the issuer is not asked again
    issuer.add_key("rsa-3")
    for _ in range(20):
        assert _predict(served, issuer.token("rsa-3")).status_code == 401
    time.sleep(0.5)
    assert issuer.hits["/jwks.json"] == fetched + 1


def test_a_withdrawn_key_stops_working_even_for_a_token_already_accepted(served: ServerUrl, issuer: Issuer) -> None:
    token = issuer.token("ec-1")
    assert _predict(served, token).status_code == 200  # verified, and remembered until it expires
    issuer.published.remove("ec-1")
    issuer.add_key("rsa-2")
    _predict(served, issuer.token("rsa-2"))  # an unknown key id wakes the refresh, which drops ec-1
    _eventually(lambda: _predict(served, token).status_code == 401)
    assert "key this server does not know" in _predict(served, token).json()["error"]["message"]


def test_api_keys_keep_working_while_the_issuer_cannot_be_reached(settings: Settings, workspace: Workspace) -> None:
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    _, secret = workspace.keys.create("ci", role="predictor")
    nowhere = f"http://127.0.0.1:{free_port()}"
    with running_server(_sso_settings(settings, nowhere), workspace) as url:
        assert _predict(url, secret).status_code == 200
        offline = Issuer(url=nowhere)
        offline.add_key("rsa-1")
        refused = _predict(url, offline.token())
        assert refused.status_code == 401 and "does not know" in refused.json()["error"]["message"]


def test_a_public_address_counts_sso_as_auth_on(settings: Settings, issuer: Issuer) -> None:
    with pytest.raises(InvalidArgumentError, match="auth off"):
        check_exposure(settings, "0.0.0.0", insecure=False)
    check_exposure(_sso_settings(settings, issuer.url), "0.0.0.0", insecure=False)  # no error: tokens need auth


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"oidc_issuer": "http://idp.example.com"}, "must use https://"),
        ({"oidc_issuer": "https://idp.example.com", "oidc_role_map": ROLE_MAP}, "oidc_audience is required"),
        ({"oidc_issuer": "https://idp.example.com", "oidc_audience": AUDIENCE}, "oidc_role_map is required"),
        ({"oidc_role_map": '{"ml-admins": "root"}'}, "'ml-admins' maps to 'root'"),
        ({"oidc_role_map": "[1, 2"}, "not JSON"),
    ],
)
def test_sso_settings_are_refused_when_read(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(Exception, match=problem) as refused:
        Settings.load(**overrides)
    assert "\n" not in str(refused.value)


def test_the_role_map_reads_from_a_toml_table(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "shipyard.toml"
    config.write_text(
        'oidc_issuer = "https://idp.example.com"\noidc_audience = "shipyard"\n'
        '[oidc_role_map]\n"ml-admins" = "admin"\n"fraud-app" = "predictor"\n'
    )
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    assert Settings.load().oidc_role_specs() == {"fraud-app": "predictor", "ml-admins": "admin"}


def test_roles_come_from_a_list_a_string_or_a_nested_claim() -> None:
    from shipyard.core.identity import Role
    from shipyard.serving.oidc import roles_from_claims

    role_map = {"ml-apps": Role.PREDICTOR, "ml-admins": Role.ADMIN}
    assert roles_from_claims({"groups": ["ml-apps", "x"]}, "groups", role_map) == {Role.PREDICTOR}
    assert roles_from_claims({"roles": "ml-apps ml-admins"}, "roles", role_map) == {Role.PREDICTOR, Role.ADMIN}
    nested = {"realm_access": {"roles": ["ml-admins"]}}
    assert roles_from_claims(nested, "realm_access.roles", role_map) == {Role.ADMIN}
    namespaced = {"https://example.com/groups": ["ml-apps"]}
    assert roles_from_claims(namespaced, "https://example.com/groups", role_map) == {Role.PREDICTOR}
    assert roles_from_claims({"groups": {"ml-apps": True}}, "groups", role_map) == frozenset()
    assert roles_from_claims({"groups": [["ml-apps"]]}, "groups", role_map) == frozenset()
