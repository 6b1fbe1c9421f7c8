"""Every notification channel kind passes the same suite against a real target on 127.0.0.1: an alert it
sends is accepted and arrives once; a target that is down is an outcome to retry, never an exception; an
HTTP target's 5xx is retried and its 4xx given up (another try would be refused the same way)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from shipyard.alerts.events import AlertEvent
from shipyard.notify.channel import check_channel
from shipyard.notify.delivery import send_once
from tests.notify_support import smtp_server
from tests.serving_support import free_port
from tests.webhook_receiver import webhook_receiver

ENVIRON = {"HOOK_KEY": "k"}
ALERT = AlertEvent(
    status="firing",
    rule="contract",
    endpoint="iris",
    metric="drift.share",
    value=0.5,
    op=">",
    threshold=0.3,
    severity="warning",
    started_at=datetime(2026, 1, 5, tzinfo=UTC),
)


@contextmanager
def http_target(**options: Any) -> Iterator[tuple[str, Callable[[], int]]]:
    with webhook_receiver(**options) as receiver:
        yield receiver.url, lambda: len(receiver.accepted)


@contextmanager
def smtp_target() -> Iterator[tuple[str, Callable[[], int]]]:
    with smtp_server() as mailbox:
        yield f"{mailbox.host}:{mailbox.port}", lambda: len(mailbox.messages)


def options(kind: str, where: str) -> dict[str, Any]:
    if kind == "email":
        host, _, port = where.rpartition(":")
        return {"smtp_host": host, "smtp_port": int(port), "to": ["ops@example.com"]}
    if kind == "webhook":
        return {"url": where, "secret_env": "HOOK_KEY"}
    return {"url": where}


def send(kind: str, where: str) -> Any:
    channel = check_channel("contract", kind, options(kind, where), environ=ENVIRON)
    return send_once(channel, ALERT, environ=ENVIRON, clock=lambda: datetime.now(UTC), timeout_s=5.0, delivery_id=7)


KINDS = ["webhook", "slack", "alertmanager", "email"]
HTTP_KINDS = ["webhook", "slack", "alertmanager"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_alert_sent_to_a_live_target_is_accepted_and_arrives_once(kind: str) -> None:
    with smtp_target() if kind == "email" else http_target() as (where, arrived):
        outcome = send(kind, where)
        assert outcome.ok and outcome.problem is None and outcome.answer
        assert arrived() == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_target_that_is_down_is_an_outcome_to_retry_not_an_exception(kind: str) -> None:
    where = f"127.0.0.1:{free_port()}" if kind == "email" else f"http://127.0.0.1:{free_port()}/hook"
    outcome = send(kind, where)
    assert not outcome.ok and outcome.retry
    assert outcome.problem


@pytest.mark.parametrize("kind", HTTP_KINDS)
@pytest.mark.parametrize(("status", "retry"), [(503, True), (429, True), (400, False), (404, False)])
def test_an_http_refusal_is_retried_only_when_another_try_may_help(kind: str, status: int, retry: bool) -> None:
    with http_target(fail_first=1, fail_status=status) as (where, arrived):
        outcome = send(kind, where)
        assert (outcome.ok, outcome.retry, outcome.answer) == (False, retry, f"HTTP {status}")
        assert arrived() == 0
