"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): ``text`` for notifications, ``blocks``
for the message itself, as Slack's Block Kit lays it out."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shipyard.alerts.events import AlertEvent
from shipyard.notify.base import Outcome, describe, title, where
from shipyard.notify.webhook import post_json

if TYPE_CHECKING:
    import httpx

EMOJI = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


def slack_payload(alert: AlertEvent) -> dict[str, Any]:
    """The message: a header line, the figure, and the labels as fields; ``text`` alone says it all too."""
    head = f"{EMOJI[alert.status]} {title(alert)}"
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in {**where(alert), **alert.labels}.items()]
    fields.append({"type": "mrkdwn", "text": f"*since*\n{alert.started_at:%Y-%m-%d %H:%M:%S} UTC"})
    if alert.action:
        fields.append({"type": "mrkdwn", "text": f"*action*\n{alert.action}"})
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*\n{describe(alert)}"}},
        {"type": "section", "fields": fields[:10]},  # Slack takes at most 10 fields in a section
    ]
    return {"text": f"{head}: {describe(alert)}", "blocks": blocks}


class SlackNotifier:
    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url

    def send(self, alert: AlertEvent, *, delivery_id: int) -> Outcome:
        body = json.dumps(slack_payload(alert)).encode()
        return post_json(self.client, self.url, body, {"User-Agent": "shipyard-notify"})
