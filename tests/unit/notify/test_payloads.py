"""What each channel kind sends, as pure functions of an alert; and declarations checked before any send."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from shipyard.alerts.events import AlertEvent
from shipyard.errors import InvalidArgumentError
from shipyard.notify.alertmanager import alertmanager_alert, label_name
from shipyard.notify.channel import check_channel, shown_url
from shipyard.notify.email import email_message
from shipyard.notify.slack import slack_payload
from shipyard.notify.webhook import signature

NOW = datetime(2026, 1, 5, 12, 30, tzinfo=UTC)


def alert(status: str = "firing", **fields: object) -> AlertEvent:
    base: dict[str, object] = {
        "status": status,
        "rule": "drift-share",
        "endpoint": "fraud",
        "metric": "drift.share",
        "value": 0.42,
        "op": ">",
        "threshold": 0.3,
        "severity": "critical",
        "started_at": NOW - timedelta(minutes=30),
        "labels": {"team": "risk", "on-call": "a"},
    }
    return AlertEvent(**{**base, **fields})  # type: ignore[arg-type]


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"rule": "x"}'
    assert signature("key", body) == "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert signature("key", body) != signature("key", body + b" ")


def test_alertmanager_firing_alert_holds_ahead_and_a_resolve_ends_now_or_when_it_ended() -> None:
    firing = alertmanager_alert(alert(), now=NOW, hold_s=3600)
    assert firing["endsAt"] == "2026-01-05T13:30:00Z" and firing["startsAt"] == "2026-01-05T12:00:00Z"
    assert firing["labels"]["alertname"] == "drift-share" and firing["labels"]["on_call"] == "a"
    ended = NOW - timedelta(minutes=1)
    assert (
        alertmanager_alert(alert("resolved", ended_at=ended), now=NOW, hold_s=3600)["endsAt"] == "2026-01-05T12:29:00Z"
    )
    # an end stamped in the future (a skewed clock) would keep the alert active: it ends now instead
    later = alertmanager_alert(alert("resolved", ended_at=NOW + timedelta(hours=1)), now=NOW, hold_s=3600)
    assert later["endsAt"] == "2026-01-05T12:30:00Z"


def test_value_not_computed_is_said_in_words_never_nan() -> None:
    resolved = alertmanager_alert(alert("resolved", value=None), now=NOW, hold_s=60)
    assert resolved["annotations"]["value"] == "not computed"
    assert "not computed" in slack_payload(alert(value=None))["text"]


@pytest.mark.parametrize(("key", "name"), [("on-call", "on_call"), ("9lives", "_9lives"), ("ok_1", "ok_1")])
def test_label_names_are_made_valid_for_prometheus(key: str, name: str) -> None:
    assert label_name(key) == name


def test_slack_payload_has_text_and_at_most_ten_fields() -> None:
    payload = slack_payload(alert(labels={f"l{i}": "v" for i in range(20)}, action="rollback"))
    assert payload["text"].startswith(":rotating_light: [FIRING critical] drift-share on fraud")
    assert len(payload["blocks"][1]["fields"]) == 10


def test_email_subject_and_body_name_the_rule_value_and_labels() -> None:
    message = email_message(alert("resolved", ended_at=NOW), sender="s@x.org", to=["a@x.org", "b@x.org"], delivery_id=3)
    assert message["Subject"] == "[RESOLVED critical] drift-share on fraud"
    assert message["To"] == "a@x.org, b@x.org"
    body = message.get_content()
    assert "value: 0.42 (> 0.3)" in body and "team: risk" in body and "resolved at: 2026-01-05T12:30:00+00:00" in body


def test_shown_url_hides_paths_queries_and_credentials() -> None:
    assert shown_url("https://user:pw@hooks.slack.com/services/T/B/SECRET?x=1") == "https://hooks.slack.com/…"
    assert shown_url("http://127.0.0.1:9093") == "http://127.0.0.1:9093"


def test_declarations_are_normalised_and_filters_apply() -> None:
    am = check_channel("am", "alertmanager", {"url": "http://127.0.0.1:9093/api/v2/alerts/"}, environ={})
    assert am.config == {"url": "http://127.0.0.1:9093", "hold_s": 86400.0}
    mail = check_channel(
        "mail",
        "email",
        {"smtp_host": "smtp", "to": "a@b.org"},
        severities=["critical"],
        endpoints=["fraud"],
        environ={},
    )
    assert mail.config["smtp_port"] == 25 and mail.config["to"] == ["a@b.org"]
    assert mail.wants("critical", "fraud") and not mail.wants("warning", "fraud") and not mail.wants("critical", "x")


@pytest.mark.parametrize(
    ("kind", "options", "fragment"),
    [
        ("webhook", {"url": "http://h/x", "secret_env": "lower-case!"}, "must name an environment variable"),
        ("email", {"smtp_host": "h", "to": ["not-an-address"]}, "is not an email address"),
        ("email", {"smtp_host": "h", "to": ["a@b"], "smtp_port": 70000}, "--smtp-port must be 1-65535"),
        ("alertmanager", {"url": "http://h", "hold_s": 5}, "hold must be between 1m and 30d"),
        ("slack", {"url": "http://h:notaport/x"}, "is not a valid URL"),
    ],
)
def test_bad_declarations_name_the_option_and_what_is_allowed(
    kind: str, options: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        check_channel("c", kind, options, environ={})
