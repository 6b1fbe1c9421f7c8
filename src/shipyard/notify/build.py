"""From a stored channel to the notifier of its kind (the kinds' modules are imported only when used)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from shipyard.notify.base import Notifier
from shipyard.notify.channel import DEFAULT_HOLD_S, Channel

if TYPE_CHECKING:
    import httpx


def notifier_for(
    channel: Channel,
    client: httpx.Client,
    *,
    environ: Mapping[str, str],
    clock: Callable[[], datetime],
    timeout_s: float,
) -> Notifier:
    """The notifier that sends to ``channel``; ``client`` is reused across its sends (its connections kept)."""
    config = channel.config
    if channel.kind == "webhook":
        from shipyard.notify.webhook import WebhookNotifier

        return WebhookNotifier(client, str(config["url"]), secret_env=config.get("secret_env"), environ=environ)
    if channel.kind == "slack":
        from shipyard.notify.slack import SlackNotifier

        return SlackNotifier(client, str(config["url"]))
    if channel.kind == "alertmanager":
        from shipyard.notify.alertmanager import AlertmanagerNotifier

        hold_s = float(config.get("hold_s", DEFAULT_HOLD_S))
        return AlertmanagerNotifier(client, str(config["url"]), hold_s=hold_s, clock=clock)
    if channel.kind == "email":
        from shipyard.notify.email import EmailNotifier

        return EmailNotifier(config, environ=environ, timeout_s=timeout_s)
    raise ValueError(f"channel {channel.name!r} has an unknown kind {channel.kind!r}")
