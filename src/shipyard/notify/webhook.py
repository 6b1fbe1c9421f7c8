"""Generic JSON webhook: the alert's ``to_dict()``, signed with HMAC-SHA256 when the channel names a secret.

The signature (``X-Shipyard-Signature: sha256=<hex>``, over the exact body bytes) lets a receiver check that
the call came from whoever holds the secret, the scheme GitHub and Stripe use. The secret is read from the
named environment variable for each send, so rotating it needs no change to the channel.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from shipyard.alerts.events import AlertEvent
from shipyard.notify.base import Outcome, http_outcome

if TYPE_CHECKING:
    import httpx

SIGNATURE_HEADER = "X-Shipyard-Signature"


def signature(secret: str, body: bytes) -> str:
    """The header's value for ``body``: ``sha256=`` and the hex HMAC-SHA256 keyed by ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_json(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
    """One POST; a connection error or timeout is an outcome to retry, never an exception."""
    import httpx

    try:
        response = client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    except httpx.HTTPError as exc:
        return Outcome(f"{type(exc).__name__}: {exc}".replace(url, "<url>"), retry=True, answer="no answer")
    return http_outcome(response.status_code, response.text)


class WebhookNotifier:
    def __init__(self, client: httpx.Client, url: str, *, secret_env: str | None, environ: Mapping[str, str]) -> None:
        self.client = client
        self.url = url
        self.secret_env = secret_env
        self.environ = environ

    def send(self, alert: AlertEvent, *, delivery_id: int) -> Outcome:
        body = json.dumps(alert.to_dict(), sort_keys=True).encode()
        headers = {
            "User-Agent": "shipyard-notify",
            "X-Shipyard-Event": alert.event,
            "X-Shipyard-Delivery": str(delivery_id),
        }
        if self.secret_env is not None:
            secret = self.environ.get(self.secret_env)
            if not secret:
                return Outcome(f"environment variable {self.secret_env} (the signing secret) is not set on this server")
            headers[SIGNATURE_HEADER] = signature(secret, body)
        return post_json(self.client, self.url, body, headers)
