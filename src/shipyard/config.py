"""Settings: environment variables ``SHIPYARD_*`` over an optional ``shipyard.toml``, over defaults.

Built by an entry point (the CLI, ``create_app``, the first SDK call) and passed down; nothing here
runs at import time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from shipyard.errors import ConfigError

CONFIG_FILE_ENV = "SHIPYARD_CONFIG"
DEFAULT_CONFIG_FILE = "shipyard.toml"


class Settings(BaseSettings):
    """Where the control-plane store and the artifacts live, and how to reach them."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="forbid", frozen=True)

    home: Path = Path(".shipyard")
    database_url: str = ""
    artifact_uri: str = ""
    s3_endpoint_url: str | None = None
    url: str | None = None
    # A secret: SecretStr keeps it out of reprs, logs and error messages (get_secret_value() where it is sent).
    api_key: SecretStr | None = None
    # HTTPS: the server's certificate and key (both or neither); the CA the client and CLI trust beyond the system's.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_file: Path | None = None
    # Token buckets on predict, V2 infer and feedback (shipyard.serving.ratelimit); 0 requests/s is off.
    # Each endpoint has its own bucket, and each caller (key, token subject) its own; burst 0: one second's worth.
    rate_limit_rps: float = Field(0.0, ge=0)
    rate_limit_burst: int = Field(0, ge=0)
    rate_limit_key_rps: float = Field(0.0, ge=0)
    rate_limit_key_burst: int = Field(0, ge=0)
    # Failed authentications (a credential presented and refused) per client address and minute before that
    # address gets 429 for a while: brute force is slowed and logged. 0 turns it off.
    auth_failures_per_minute: int = Field(60, ge=0)
    # Browser origins allowed to call the API (CORS), e.g. https://dash.example.com; none by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # "auto": auth is on as soon as any API key exists (or SSO tokens are configured), off for one user on
    # loopback; "required": on from the first request, even before a key exists (shipyard.serving.auth).
    auth: Literal["auto", "required"] = "auto"
    # /metrics without credentials (Prometheus scrapers usually have none); false: viewers and up only.
    metrics_public: bool = True
    # SSO bearer tokens (shipyard.serving.oidc): JWTs signed by this issuer for this audience are accepted beside
    # API keys, and turn auth on. The signing keys come from oidc_jwks_url, or when it is unset from the issuer's
    # OpenID discovery document ({issuer}/.well-known/openid-configuration, its "jwks_uri").
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    # The claim holding the caller's groups or roles ("groups", "roles", or a path such as "realm_access.roles"),
    # and which of its values grant which Shipyard role: {"ml-admins": "admin", "fraud-app": "predictor"}. A value
    # not in the map grants nothing; a token with no mapped value is authenticated but may call nothing (403).
    # Kept as canonical JSON text like drift_thresholds; a table in shipyard.toml works too.
    oidc_roles_claim: str = Field("groups", min_length=1)
    oidc_role_map: Annotated[str, NoDecode] = "{}"
    # Clock skew allowed between the issuer and this server when checking "exp" and "nbf".
    oidc_leeway_s: float = Field(30.0, ge=0, le=300)
    # Four-eyes approvals: whoever registered a version cannot approve it. It binds identities the server
    # authenticated (keys, SSO tokens); the person at this machine (the CLI on the store) is one user and exempt.
    four_eyes: bool = True
    max_request_rows: int = Field(10_000, ge=1)
    max_request_bytes: int = Field(16 * 2**20, ge=1024)
    # A model file uploaded to POST /v1/models/{name}/versions (remote `models register`): past it, 413.
    max_upload_bytes: int = Field(2 * 2**30, ge=1024)
    # The request line and headers together, and how many header fields: past either, 431 (serving.http_limits).
    max_header_bytes: int = Field(64 * 1024, ge=1024)
    max_headers: int = Field(100, ge=1)
    poll_interval_s: float = Field(1.0, gt=0, le=60)
    # Monitoring: the prediction log and live window profiles (see shipyard.serving.recorder).
    monitoring: bool = True
    log_sample_rate: float = Field(1.0, ge=0, le=1)
    log_buffer_rows: int = Field(10_000, ge=1)
    log_flush_s: float = Field(1.0, gt=0, le=300)
    monitor_window_s: int = Field(300, ge=1, le=86_400)
    monitor_flush_s: float = Field(5.0, gt=0, le=3600)
    # Drift thresholds per endpoint ("*" for every endpoint): {"fraud": {"default": {"psi": 0.25},
    # "features": {"amount": {"psi": 0.3}}}}; the keys are those of shipyard.monitoring.drift.DriftThresholds.
    # Kept as canonical JSON text so the settings stay hashable; a table in shipyard.toml works too.
    drift_thresholds: Annotated[str, NoDecode] = "{}"
    # A tuple, not a list: settings are frozen and hashable (one workspace per settings).
    webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _read_webhook_urls(cls, value: Any) -> Any:
        """``SHIPYARD_WEBHOOK_URLS`` is a comma-separated string or a JSON list; each URL must be http(s)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    raise ValueError(f"not a JSON list of URLs: {exc}") from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected URLs as a comma-separated string or a list, got {value!r}")
        for url in value:
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"webhook URL {url!r} must start with http:// or https:// and name a host")
        return tuple(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _read_cors_origins(cls, value: Any) -> Any:
        """``SHIPYARD_CORS_ORIGINS`` is comma-separated; each origin is scheme://host[:port] (no path, no "*")."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected origins as a comma-separated string or a list, got {value!r}")
        for origin in value:
            parts = urlsplit(origin) if isinstance(origin, str) else None
            if (
                parts is None
                or parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path not in ("", "/")
                or parts.query
            ):
                raise ValueError(f"CORS origin {origin!r} must look like https://host[:port], without a path")
        return tuple(str(origin).rstrip("/") for origin in value)

    @field_validator("drift_thresholds", mode="before")
    @classmethod
    def _check_drift_thresholds(cls, value: Any) -> str:
        """Refuse a bad threshold when settings are read, not when a report is asked for."""
        if isinstance(value, str):
            try:
                value = json.loads(value or "{}")
            except ValueError as exc:
                raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError('expected an object of endpoint name (or "*") to thresholds')
        if not value:
            return "{}"  # nothing to check, and no drift code to import (every CLI command reads settings)
        from shipyard.errors import ShipyardError
        from shipyard.monitoring.thresholds import DriftThresholds

        for endpoint, spec in value.items():
            try:
                DriftThresholds.from_dict(spec)
            except (ShipyardError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"drift thresholds for {endpoint!r}: {exc}") from None
        return json.dumps(value, sort_keys=True)

    def drift_threshold_specs(self) -> dict[str, Any]:
        return dict(json.loads(self.drift_thresholds))

    @field_validator("oidc_issuer", "oidc_jwks_url", mode="after")
    @classmethod
    def _check_oidc_url(cls, value: str | None) -> str | None:
        """Signing keys fetched over plain HTTP could be swapped on the way: https, or http on loopback only."""
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} must be an https:// URL naming a host")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError(f"{value!r} must use https:// (plain http is accepted only on loopback, for tests)")
        return value

    @field_validator("oidc_role_map", mode="before")
    @classmethod
    def _check_oidc_role_map(cls, value: Any) -> str:
        """Claim value to role name, refused when read if a role is unknown: a typo must not grant nothing quietly."""
        if isinstance(value, str):
            try:
                value = json.loads(value or "{}")
            except ValueError as exc:
                raise ValueError(f'not JSON: {exc}; expected e.g. {{"ml-admins": "admin"}}') from None
        if not isinstance(value, dict):
            raise ValueError('expected an object of claim value to role, e.g. {"ml-admins": "admin"}')
        from shipyard.core.identity import Role

        roles = {r.value for r in Role}
        for claim_value, role in value.items():
            if not claim_value or not isinstance(role, str) or role not in roles:
                raise ValueError(
                    f"{claim_value!r} maps to {role!r}; map each claim value to one of: {', '.join(sorted(roles))}"
                )
        return json.dumps(value, sort_keys=True)

    def oidc_role_specs(self) -> dict[str, str]:
        return dict(json.loads(self.oidc_role_map))

    @model_validator(mode="after")
    def _check_oidc_complete(self) -> Settings:
        """An issuer alone would accept its tokens for any application, and grant them nothing: say so at start."""
        if self.oidc_issuer is None:
            return self
        if not self.oidc_audience:
            raise ValueError("oidc_audience is required with oidc_issuer (the client id tokens must be issued for)")
        if self.oidc_role_map == "{}":
            raise ValueError('oidc_role_map is required with oidc_issuer, e.g. {"ml-admins": "admin"}')
        return self

    @model_validator(mode="after")
    def _fill_derived_defaults(self) -> Settings:
        # Derived defaults follow ``home`` unless given, so one variable relocates everything.
        home = self.home.expanduser()
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'shipyard.db'}")
        if not self.artifact_uri:
            object.__setattr__(self, "artifact_uri", str(home / "artifacts"))
        if (self.tls_cert is None) != (self.tls_key is None):
            given, missing = ("tls_cert", "tls_key") if self.tls_key is None else ("tls_key", "tls_cert")
            raise ValueError(f"{given} is set but {missing} is not: HTTPS needs both the certificate and its key")
        return self

    def behaviour(self) -> dict[str, Any]:
        """The settings that change what a server does, as the audit trail records them: no secret in them.

        The API key and webhook URLs (which may carry tokens) are left out, the database URL's password masked.
        """
        from shipyard.store.db import redact

        data = self.model_dump(mode="json", exclude={"api_key", "webhook_urls", "home"})
        data["database_url"] = redact(self.database_url)
        data["webhook_receivers"] = len(self.webhook_urls)
        return data

    def __repr_args__(self) -> Any:
        # The database URL may hold a password: shown masked wherever settings are printed or logged.
        from shipyard.store.db import redact

        for name, value in super().__repr_args__():
            yield name, redact(value) if name == "database_url" and isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment and ``shipyard.toml`` now; a bad value is one readable ConfigError."""
        explicit = os.environ.get(CONFIG_FILE_ENV)
        if explicit and not Path(explicit).is_file():
            raise ConfigError(f"{CONFIG_FILE_ENV}={explicit!r} does not name a readable file")
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid Shipyard settings: {problems}") from exc
        except (ValueError, RecursionError, OSError) as exc:
            # A malformed shipyard.toml is a parse error (ValueError), one nested thousands deep exhausts the
            # parser's recursion, an unreadable one is an OSError: each is named with the file to fix.
            file = Path(explicit or DEFAULT_CONFIG_FILE)
            if not file.is_file():
                raise ConfigError(f"cannot read Shipyard settings: {exc}") from exc
            reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ConfigError(
                f"cannot read settings file {file}: {reason}; fix it or point {CONFIG_FILE_ENV} elsewhere"
            ) from exc


def is_loopback(host: str) -> bool:
    """This machine only: plain-HTTP OIDC URLs are allowed there, and a server bound there may run auth off."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
