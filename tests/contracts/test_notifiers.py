"""Every notifier passes the same suite: events reach a real receiver on 127.0.0.1 as JSON, retried through
outages, and ``notify`` never blocks or raises, whatever the receiver does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from shipyard.services.rollouts import NoNotifier, Notifier, RolloutService
from shipyard.services.webhooks import WebhookNotifier
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import free_port
from tests.webhook_receiver import webhook_receiver

# A delivering notifier, built for some receiver URLs with the test's retry and queue settings.
Factory = Callable[..., Any]


def _webhooks(urls: Sequence[str], **options: Any) -> WebhookNotifier:
    return WebhookNotifier(urls, **{"timeout_s": 2.0, "retries": 5, "backoff_s": 0.01, **options})


DELIVERING = [pytest.param(_webhooks, id="webhook")]
ALL = [*DELIVERING, pytest.param(lambda urls, **_: NoNotifier(), id="none")]

EVENT_FIELDS = {
    "rollout_id",
    "endpoint",
    "stable",
    "candidate",
    "status",
    "weight",
    "event",
    "message",
    "at",
    "evidence",
}


def _close(notifier: Notifier, timeout_s: float = 5.0) -> None:
    close = getattr(notifier, "close", None)
    if close is not None:
        close(timeout_s)


def _event(i: int) -> dict[str, Any]:
    return {"rollout_id": "r1", "endpoint": "fraud", "event": "held", "message": f"event {i}", "seq": i}


@pytest.mark.parametrize("make", DELIVERING)
def test_every_rollout_event_arrives_as_json_with_the_fields_the_service_sends(
    make: Factory, sqlite_workspace: Workspace
) -> None:
    x, _, model = iris()
    registry = sqlite_workspace.registry
    registry.register(model, name="iris", sample_input=x[:20])
    registry.register(model, name="iris", sample_input=x[:20])
    sqlite_workspace.endpoints.create("iris", model="iris:1")
    with webhook_receiver() as first, webhook_receiver() as second:
        notifier = make([first.url, second.url])
        service = RolloutService(registry, sqlite_workspace.endpoints, notifier=notifier)
        state = service.start("iris", to="iris:2", strategy="replace")
        for receiver in (first, second):
            events = receiver.wait_for(2)
            assert [e["event"] for e in events] == ["started", "completed"]
            for event in events:
                assert set(event) >= EVENT_FIELDS
                assert (event["rollout_id"], event["endpoint"]) == (state.id, "iris")
                assert (event["stable"], event["candidate"]) == ("iris:1", "iris:2")
            assert events[0]["evidence"]["spec"]["strategy"] == "replace"
            assert events[-1]["status"] == "completed" and events[-1]["weight"] == 1.0
            assert all(d.headers["content-type"] == "application/json" for d in receiver.accepted)
        _close(notifier)


@pytest.mark.parametrize("make", DELIVERING)
def test_events_arrive_in_the_order_they_were_notified(make: Factory) -> None:
    with webhook_receiver() as receiver:
        notifier = make([receiver.url])
        for i in range(20):
            notifier.notify([_event(i)])
        assert [e["seq"] for e in receiver.wait_for(20)] == list(range(20))
        _close(notifier)


@pytest.mark.parametrize("make", DELIVERING)
def test_delivery_is_retried_while_the_receiver_fails_and_arrives_once_it_recovers(make: Factory) -> None:
    with webhook_receiver(fail_first=3, fail_status=503) as receiver:
        notifier = make([receiver.url])
        notifier.notify([_event(0)])
        assert [e["seq"] for e in receiver.wait_for(1)] == [0]
        time.sleep(0.1)
        assert len(receiver.attempts) == 4 and len(receiver.accepted) == 1
        # A receiver can tell the retries of one event apart from new events.
        assert len({d.headers["x-shipyard-delivery"] for d in receiver.attempts}) == 1
        _close(notifier)


@pytest.mark.parametrize("make", DELIVERING)
def test_a_client_error_is_not_retried(make: Factory) -> None:
    with webhook_receiver(fail_first=1, fail_status=400) as receiver:
        notifier = make([receiver.url])
        notifier.notify([_event(0), _event(1)])
        assert [e["seq"] for e in receiver.wait_for(1)] == [1]  # event 0 was refused once and given up
        time.sleep(0.1)
        assert len(receiver.attempts) == 2
        _close(notifier)


@pytest.mark.parametrize("make", ALL)
def test_a_receiver_that_is_down_neither_blocks_nor_raises_in_notify(make: Factory) -> None:
    notifier = make([f"http://127.0.0.1:{free_port()}/hooks"], retries=3, backoff_s=0.5)
    started = time.perf_counter()
    for i in range(50):
        notifier.notify([_event(i)])
    assert time.perf_counter() - started < 0.25
    started = time.perf_counter()
    _close(notifier, timeout_s=0.3)  # gives up on what it cannot deliver instead of hanging the process
    assert time.perf_counter() - started < 2.0
    notifier.notify([_event(99)])  # after close: still no exception


@pytest.mark.parametrize("make", DELIVERING)
def test_the_queue_bound_holds_while_the_receiver_stalls(make: Factory) -> None:
    gate = threading.Event()
    with webhook_receiver(gate=gate) as receiver:
        notifier = make([receiver.url], queue_size=3)
        started = time.perf_counter()
        for i in range(20):
            notifier.notify([_event(i)])
        assert time.perf_counter() - started < 0.25
        assert notifier.pending() <= 3
        # At most one event is in flight and three wait; the rest were dropped and counted, not queued.
        assert 16 <= notifier.dropped <= 17
        gate.set()
        delivered = receiver.wait_for(20 - notifier.dropped)
        assert [e["seq"] for e in delivered] == sorted(e["seq"] for e in delivered)
        _close(notifier)
        assert len(receiver.accepted) + notifier.dropped == 20


@pytest.mark.parametrize("make", DELIVERING)
def test_close_delivers_what_is_queued(make: Factory) -> None:
    with webhook_receiver(fail_first=2) as receiver:
        notifier = make([receiver.url])
        notifier.notify([_event(i) for i in range(5)])
        _close(notifier, timeout_s=5.0)
        assert [e["seq"] for e in receiver.events()] == [0, 1, 2, 3, 4]
