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

from pydantic import Field, ValidationError, field_validator, model_validator
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
    api_key: str | None = None
    # "auto": auth is on as soon as any API key exists (or SSO tokens are configured), off for one user on
    # loopback; "required": on from the first request, even before a key exists (shipyard.serving.auth).
    auth: Literal["auto", "required"] = "auto"
    # /metrics without credentials (Prometheus scrapers usually have none); false: viewers and up only.
    metrics_public: bool = True
    max_request_rows: int = Field(10_000, ge=1)
    max_request_bytes: int = Field(16 * 2**20, ge=1024)
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

    @model_validator(mode="after")
    def _fill_derived_defaults(self) -> Settings:
        # Derived defaults follow ``home`` unless given, so one variable relocates everything.
        home = self.home.expanduser()
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'shipyard.db'}")
        if not self.artifact_uri:
            object.__setattr__(self, "artifact_uri", str(home / "artifacts"))
        return self

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
