"""A notification channel as declared: its kind, where it sends, and which alerts it wants.

Pure: checking a declaration reads neither the network nor the environment, except that the caller passes
the environment in so a secret's variable can be named and found missing at declaration time. Secrets
themselves (the HMAC key, the SMTP password) are never part of a channel: only the name of the variable
that holds them on the server, read when a notification is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shipyard.errors import InvalidArgumentError

KINDS = ("webhook", "slack", "email", "alertmanager")
SEVERITIES = ("info", "warning", "critical")
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,55}$")  # its cursor's key, channel:NAME, fits 64
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
DEFAULT_HOLD_S = 86_400.0
"""How long Alertmanager keeps a firing alert active without hearing again (its ``endsAt``): Shipyard sends a
firing alert once, and its resolve (with ``endsAt`` now) ends it sooner."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One stored channel: ``config`` holds the kind's options (URLs, SMTP host, env var names; no secret)."""

    name: str
    kind: str
    config: Mapping[str, Any]
    severities: tuple[str, ...] = ()
    """Only alerts of these severities (none: every severity)."""
    endpoints: tuple[str, ...] = ()
    """Only alerts on these endpoints (none: every endpoint)."""
    created_by: str = ""
    created_at: datetime | None = None
    receiver: str = field(init=False)
    """The key of this channel's cursor among the outbox's receivers."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "receiver", receiver_key(self.name))

    def wants(self, severity: str, endpoint: str) -> bool:
        """Whether an alert of ``severity`` on ``endpoint`` goes to this channel."""
        return (not self.severities or severity in self.severities) and (
            not self.endpoints or endpoint in self.endpoints
        )

    def target(self) -> str:
        """Where it sends, as listings show it: a URL's host without the path (a Slack URL's path is its token)."""
        if self.kind == "email":
            port = self.config["smtp_port"]
            return f"smtp://{self.config['smtp_host']}:{port} to {', '.join(self.config['to'])}"
        return shown_url(str(self.config["url"]))

    def stored(self) -> dict[str, Any]:
        """The store's ``config`` column: the options and the filters."""
        return {"options": dict(self.config), "severities": list(self.severities), "endpoints": list(self.endpoints)}

    @classmethod
    def from_stored(
        cls,
        name: str,
        kind: str,
        stored: Mapping[str, Any],
        *,
        created_by: str = "",
        created_at: datetime | None = None,
    ) -> Channel:
        return cls(
            name,
            kind,
            dict(stored.get("options") or {}),
            tuple(stored.get("severities") or ()),
            tuple(stored.get("endpoints") or ()),
            created_by,
            created_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """What the API and ``channels list --json`` show: the options with URLs shown as ``target()`` does."""
        config = {k: v for k, v in self.config.items() if k != "url"}
        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.target(),
            "config": config,
            "severities": list(self.severities),
            "endpoints": list(self.endpoints),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat() if self.created_at is not None else None,
        }


def receiver_key(name: str) -> str:
    return f"channel:{name}"


def shown_url(url: str) -> str:
    """``scheme://host:port/…``: userinfo, path and query can all hold tokens, so none is shown."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or "?"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return urlunsplit((parts.scheme, netloc, "", "", "")) + rest


def check_channel(
    name: str,
    kind: str,
    options: Mapping[str, Any],
    *,
    severities: Sequence[str] = (),
    endpoints: Sequence[str] = (),
    environ: Mapping[str, str],
) -> Channel:
    """A declaration checked and normalised, or an error naming the option, the value and what is allowed.

    ``options``: ``url`` (webhook, slack, alertmanager), ``secret_env`` (webhook), ``smtp_host``,
    ``smtp_port``, ``to``, ``from``, ``starttls``, ``user_env``, ``password_env`` (email), ``hold_s``
    (alertmanager). An option that does not belong to the kind is refused rather than ignored.
    """
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidArgumentError(
            f"channel name {name!r} must be 1-56 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if kind not in KINDS:
        raise InvalidArgumentError(f"unknown channel kind {kind!r}; choose one of {', '.join(KINDS)}")
    given = {k: v for k, v in options.items() if v is not None and v != [] and v is not False}
    config = _CHECKS[kind](name, given, environ)
    unknown = sorted(set(given) - set(_ALLOWED[kind]))
    if unknown:
        raise InvalidArgumentError(
            f"channel {name!r} of kind {kind}: option(s) {', '.join(unknown)} do not apply; "
            f"a {kind} channel takes {', '.join(_ALLOWED[kind])}"
        )
    bad = sorted(set(severities) - set(SEVERITIES))
    if bad:
        raise InvalidArgumentError(f"unknown severity {bad[0]!r}; choose among {', '.join(SEVERITIES)}")
    for endpoint in endpoints:
        if not isinstance(endpoint, str) or not 0 < len(endpoint) <= 128:
            raise InvalidArgumentError(f"endpoint filter {endpoint!r} must be an endpoint name")
    return Channel(name, kind, config, tuple(dict.fromkeys(severities)), tuple(dict.fromkeys(endpoints)))


_ALLOWED: dict[str, tuple[str, ...]] = {
    "webhook": ("url", "secret_env"),
    "slack": ("url",),
    "email": ("smtp_host", "smtp_port", "to", "from", "starttls", "user_env", "password_env"),
    "alertmanager": ("url", "hold_s"),
}


def _url(name: str, kind: str, options: Mapping[str, Any]) -> str:
    url = options.get("url")
    if not url:
        raise InvalidArgumentError(f"a {kind} channel needs --url (channel {name!r})")
    if not isinstance(url, str):
        raise InvalidArgumentError(f"channel {name!r}: url must be a string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise InvalidArgumentError(f"channel {name!r}: {shown_url(url)!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(
            f"channel {name!r}: URL {shown_url(url)!r} must start with http:// or https:// and name a host"
        )
    return url


def _env(name: str, option: str, value: Any, environ: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not ENV_NAME.match(value):
        raise InvalidArgumentError(f"channel {name!r}: {option} must name an environment variable, got {value!r}")
    if not environ.get(value):
        raise InvalidArgumentError(
            f"channel {name!r}: environment variable {value} ({option}) is not set here; set it where the server "
            "runs (the secret is read from it when a notification is sent, and never stored)"
        )
    return value


def _webhook(name: str, options: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = {"url": _url(name, "webhook", options)}
    if "secret_env" in options:
        config["secret_env"] = _env(name, "secret_env", options["secret_env"], environ)
    return config


def _slack(name: str, options: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    return {"url": _url(name, "slack", options)}


def _alertmanager(name: str, options: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    url = _url(name, "alertmanager", options).rstrip("/")
    if url.endswith("/api/v2/alerts"):
        url = url[: -len("/api/v2/alerts")]
    hold_s = options.get("hold_s", DEFAULT_HOLD_S)
    if isinstance(hold_s, bool) or not isinstance(hold_s, int | float) or not 60 <= hold_s <= 30 * 86_400:
        raise InvalidArgumentError(f"channel {name!r}: hold must be between 1m and 30d, got {hold_s!r}")
    return {"url": url, "hold_s": float(hold_s)}


def _email(name: str, options: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    host = options.get("smtp_host")
    if not host or not isinstance(host, str) or any(c.isspace() for c in host):
        raise InvalidArgumentError(f"an email channel needs --smtp-host, a host name (channel {name!r})")
    port = options.get("smtp_port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidArgumentError(f"channel {name!r}: --smtp-port must be 1-65535, got {port!r}")
    to = options.get("to")
    recipients = [to] if isinstance(to, str) else list(to or [])
    if not recipients:
        raise InvalidArgumentError(f"an email channel needs --to, a recipient address (channel {name!r})")
    sender = options.get("from", "shipyard@localhost")
    for address in [*recipients, sender]:
        if not isinstance(address, str) or not ADDRESS.match(address):
            raise InvalidArgumentError(f"channel {name!r}: {address!r} is not an email address (name@host)")
    config: dict[str, Any] = {
        "smtp_host": host,
        "smtp_port": port,
        "to": recipients,
        "from": sender,
        "starttls": bool(options.get("starttls", False)),
    }
    user_env, password_env = options.get("user_env"), options.get("password_env")
    if (user_env is None) != (password_env is None):
        raise InvalidArgumentError(
            f"channel {name!r}: --user-env and --password-env go together (the SMTP login needs both)"
        )
    if user_env is not None:
        config["user_env"] = _env(name, "user_env", user_env, environ)
        config["password_env"] = _env(name, "password_env", password_env, environ)
    return config


_CHECKS = {"webhook": _webhook, "slack": _slack, "email": _email, "alertmanager": _alertmanager}
