"""Every webhook delivery mechanism passes the same suite, over a real store and real receivers on 127.0.0.1:
events from the outbox arrive as JSON, each once and in id order per receiver, retried through outages,
given up after a client error or too many failures, and a dead receiver never delays a live one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from shipyard.services.rollouts import RolloutService
from shipyard.services.webhooks import ReceiverStatus, WebhookDelivery, mask_url
from shipyard.store import outbox
from shipyard.store.db import Database
from shipyard.workspace import Workspace
from tests.models import iris
from tests.serving_support import free_port
from tests.webhook_receiver import webhook_receiver

# A delivery for some receiver URLs over a store, with the test's retry settings.
Factory = Callable[..., Any]


def _webhooks(db: Database, urls: Sequence[str], **options: Any) -> WebhookDelivery:
    return WebhookDelivery(db, urls, **{"timeout_s": 5.0, "backoff_s": 0.01, "poll_s": 0.05, **options})


DELIVERIES = [pytest.param(_webhooks, id="outbox")]

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


@contextmanager
def delivering(make: Factory, db: Database, urls: Sequence[str], **options: Any) -> Iterator[Any]:
    """A delivery registered at the outbox's end and holding the (notional) lease until the block ends."""
    delivery = make(db, urls, **options)
    delivery.register()
    delivery.hold(600)
    try:
        yield delivery
    finally:
        delivery.close(timeout_s=5.0)


def add_events(db: Database, count: int, start: int = 0) -> list[int]:
    """``count`` events in the outbox, as a change's transaction writes them; returns their ids."""
    with db.write() as conn:
        before = outbox.last_id(conn)
        outbox.add(conn, [("fraud", "held", {"event": "held", "seq": start + i}) for i in range(count)], _now())
        return list(range(before + 1, outbox.last_id(conn) + 1))


def _now() -> datetime:
    return datetime.now(UTC)


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout_s}s: {what}")


def only_status(delivery: Any) -> ReceiverStatus:
    (status,) = delivery.status()
    return status


@pytest.mark.parametrize("make", DELIVERIES)
def test_every_rollout_event_arrives_as_json_with_the_fields_the_service_sends(
    make: Factory, workspace: Workspace
) -> None:
    x, _, model = iris()
    registry = workspace.registry
    registry.register(model, name="iris", sample_input=x[:20])
    registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")
    with (
        webhook_receiver() as first,
        webhook_receiver() as second,
        delivering(make, workspace.db, [first.url, second.url]),
    ):
        state = RolloutService(registry, workspace.endpoints).start("iris", to="iris:2", strategy="replace")
        for receiver in (first, second):
            events = receiver.wait_for(2)
            assert [e["event"] for e in events] == ["started", "completed"]
            for event in events:
                assert set(event) >= EVENT_FIELDS
                assert (event["rollout_id"], event["endpoint"]) == (state.id, "iris")
                assert (event["stable"], event["candidate"]) == ("iris:1", "iris:2")
            assert events[0]["evidence"]["spec"]["strategy"] == "replace"
            assert events[-1]["status"] == "completed" and events[-1]["weight"] == 1.0
            assert [d.headers["x-shipyard-event"] for d in receiver.accepted] == ["started", "completed"]
            assert all(d.headers["content-type"] == "application/json" for d in receiver.accepted)


@pytest.mark.parametrize("make", DELIVERIES)
def test_each_receiver_gets_every_event_once_in_id_order_with_the_outbox_id_as_delivery_id(
    make: Factory, sqlite_workspace: Workspace
) -> None:
    db = sqlite_workspace.db
    with webhook_receiver() as first, webhook_receiver() as second, delivering(make, db, [first.url, second.url]):
        ids = add_events(db, 10) + add_events(db, 10, start=10)
        for receiver in (first, second):
            assert [e["seq"] for e in receiver.wait_for(20)] == list(range(20))
            assert receiver.delivery_ids() == ids
        wait_until(lambda: all(s.last_id == ids[-1] for s in _statuses(db, first.url, second.url)), "cursors at end")
    for receiver in (first, second):
        assert len(receiver.attempts) == 20  # nothing was sent twice
    assert {(s.delivered, s.failed) for s in _statuses(db, first.url, second.url)} == {(20, 0)}


def _statuses(db: Database, *urls: str) -> list[ReceiverStatus]:
    return WebhookDelivery(db, urls).status()


@pytest.mark.parametrize("make", DELIVERIES)
def test_a_receiver_that_fails_twice_gets_each_event_once_and_in_order_when_it_recovers(
    make: Factory, sqlite_workspace: Workspace
) -> None:
    db = sqlite_workspace.db
    with webhook_receiver(fail_first=2, fail_status=503) as receiver, delivering(make, db, [receiver.url]) as hooks:
        ids = add_events(db, 3)
        assert [e["seq"] for e in receiver.wait_for(3)] == [0, 1, 2]
        wait_until(lambda: only_status(hooks).last_id == ids[-1], "cursor at the end")
    # The first event was tried three times under one delivery id; each event was accepted once.
    assert [int(d.headers["x-shipyard-delivery"]) for d in receiver.attempts] == [ids[0]] * 3 + ids[1:]
    assert receiver.delivery_ids() == ids
    status = only_status(hooks)
    assert (status.delivered, status.failed, status.attempts, status.last_error) == (3, 0, 0, None)


@pytest.mark.parametrize("make", DELIVERIES)
def test_a_client_error_gives_the_event_up_and_the_next_event_is_delivered(
    make: Factory, sqlite_workspace: Workspace
) -> None:
    db = sqlite_workspace.db
    with webhook_receiver(fail_first=1, fail_status=400) as receiver, delivering(make, db, [receiver.url]) as hooks:
        ids = add_events(db, 2)
        assert [e["seq"] for e in receiver.wait_for(1)] == [1]  # event 0 was refused once and given up
        wait_until(lambda: only_status(hooks).last_id == ids[-1], "cursor at the end")
    assert len(receiver.attempts) == 2
    status = only_status(hooks)
    assert (status.delivered, status.failed) == (1, 1)


@pytest.mark.parametrize("make", DELIVERIES)
def test_an_event_is_given_up_after_max_attempts_so_a_dead_receiver_is_not_stuck_forever(
    make: Factory, sqlite_workspace: Workspace
) -> None:
    db = sqlite_workspace.db
    dead = f"http://127.0.0.1:{free_port()}/hooks"  # nothing listens: every attempt is refused
    with delivering(make, db, [dead], max_attempts=3) as hooks:
        ids = add_events(db, 2)
        wait_until(lambda: only_status(hooks).last_id == ids[-1], "both events given up")
    status = only_status(hooks)
    assert (status.delivered, status.failed, status.attempts) == (0, 2, 0)
    assert status.last_error is not None and "ConnectError" in status.last_error


@pytest.mark.parametrize("make", DELIVERIES)
def test_a_receiver_that_never_answers_does_not_delay_a_live_one(make: Factory, sqlite_workspace: Workspace) -> None:
    db = sqlite_workspace.db
    gate = threading.Event()  # never opened while the test looks: the dead receiver holds every request
    with (
        webhook_receiver(gate=gate) as dead,
        webhook_receiver() as live,
        delivering(make, db, [dead.url, live.url], timeout_s=60.0) as hooks,
    ):
        add_events(db, 10)
        assert [e["seq"] for e in live.wait_for(10)] == list(range(10))
        # The live receiver had all ten before the dead one answered its first request (if that had even
        # arrived yet): none of the dead one's timeouts or retries came first.
        assert len(dead.arrived) <= 1 and not dead.attempts
        wait_until(lambda: _by_url(hooks)[mask_url(live.url)].delivered == 10, "live cursor at the end")
        assert _by_url(hooks)[mask_url(dead.url)].attempts == 0  # its first attempt is not even over
        gate.set()


def _by_url(delivery: Any) -> dict[str, ReceiverStatus]:
    return {s.url: s for s in delivery.status()}


@pytest.mark.parametrize("make", DELIVERIES)
def test_a_receiver_seen_for_the_first_time_starts_at_the_end_of_the_outbox(
    make: Factory, sqlite_workspace: Workspace
) -> None:
    db = sqlite_workspace.db
    add_events(db, 5)  # history from before the receiver was configured
    with webhook_receiver() as receiver, delivering(make, db, [receiver.url]):
        new = add_events(db, 1, start=5)
        assert [e["seq"] for e in receiver.wait_for(1)] == [5]
        assert receiver.delivery_ids() == new


@pytest.mark.parametrize("make", DELIVERIES)
def test_a_new_lease_holder_carries_on_from_the_stored_cursor(make: Factory, sqlite_workspace: Workspace) -> None:
    db = sqlite_workspace.db
    with webhook_receiver() as receiver:
        with delivering(make, db, [receiver.url]):
            first = add_events(db, 3)
            receiver.wait_for(3)
        later = add_events(db, 3, start=3)  # while no process delivers
        with delivering(make, db, [receiver.url]):
            assert [e["seq"] for e in receiver.wait_for(6)] == list(range(6))
            wait_until(lambda: _statuses(db, receiver.url)[0].last_id == later[-1], "cursor at the end")
    assert receiver.delivery_ids() == first + later and len(receiver.attempts) == 6


@pytest.mark.parametrize("make", DELIVERIES)
def test_a_failed_delivery_is_logged_without_the_credentials_in_its_url(
    make: Factory, sqlite_workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    db = sqlite_workspace.db
    url = "https://u:secret@127.0.0.1:1/h?token=abc"
    caplog.set_level(logging.WARNING, logger="shipyard.webhooks")
    with delivering(make, db, [url], max_attempts=2) as hooks:
        ids = add_events(db, 1)
        wait_until(lambda: only_status(hooks).last_id == ids[-1], "the event given up")
    failures = [r for r in caplog.records if "delivery" in r.getMessage()]
    assert len(failures) == 2  # one retry warning, one error when given up
    for record in failures:
        text = record.getMessage()
        assert "https://u:***@127.0.0.1:1/h?token=***" in text
        assert "secret" not in text and "abc" not in text
    status = only_status(hooks)
    assert status.url == "https://u:***@127.0.0.1:1/h?token=***"
    assert status.last_error is not None and "secret" not in status.last_error and "abc" not in status.last_error


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@hooks.example/path?token=abc&x=1", "https://user:***@hooks.example/path?token=***&x=***"),
        ("https://T0KEN@hooks.example/p", "https://***@hooks.example/p"),
        ("http://127.0.0.1:9/hooks", "http://127.0.0.1:9/hooks"),
        ("https://hooks.example/p?flag#frag", "https://hooks.example/p?***#***"),
    ],
)
def test_urls_are_masked_for_logs(url: str, shown: str) -> None:
    assert mask_url(url) == shown
