"""Webhooks do not depend on who made the change: a shell's rollout moves reach the receivers of the server
holding the controller lease, each once and in order, across server restarts, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from shipyard.config import Settings
from shipyard.services.webhooks import WebhookDelivery, prune_outbox, receiver_key
from shipyard.store import outbox
from shipyard.store.db import Database
from shipyard.store.tables import webhook_outbox, webhook_receivers
from shipyard.workspace import Workspace
from tests.integration.test_cli import run
from tests.models import iris
from tests.serving_support import running_server
from tests.webhook_receiver import Receiver, webhook_receiver


def register_iris(workspace: Workspace) -> None:
    """Endpoint ``iris`` serving iris:1, with iris:2 registered."""
    x, _, model = iris()
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.registry.register(model, name="iris", sample_input=x[:20])
    workspace.endpoints.create("iris", model="iris:1")


def shell(settings: Settings) -> Callable[..., None]:
    """``shipyard …`` in a separate process over the same store, with no webhook URL of its own."""
    env = {"SHIPYARD_DATABASE_URL": settings.database_url, "SHIPYARD_ARTIFACT_URI": settings.artifact_uri}

    def command(*args: str) -> None:
        run(list(args), settings.home, extra_env=env)

    return command


def hooked(settings: Settings, *urls: str) -> Settings:
    return settings.model_copy(update={"webhook_urls": urls, "poll_interval_s": 0.2})


def kinds(receiver: Receiver) -> list[str]:
    return [e["event"] for e in receiver.events()]


def test_rollout_moves_made_from_a_shell_are_delivered_once_in_order_by_the_server_across_a_restart(
    settings: Settings, workspace: Workspace
) -> None:
    register_iris(workspace)
    cli = shell(settings)
    with webhook_receiver() as receiver:
        server_settings = hooked(settings, receiver.url)
        with running_server(server_settings, workspace):
            cli("rollout", "start", "iris", "--to", "iris:2", "--strategy", "replace")
            receiver.wait_for(2, timeout_s=30)
        # No server runs: the shell's moves wait in the outbox.
        cli("rollout", "start", "iris", "--to", "iris:1", "--strategy", "blue-green", "--bake", "1h")
        cli("rollout", "abort", "iris")
        with running_server(server_settings, workspace):
            receiver.wait_for(5, timeout_s=30)
            cli("rollout", "start", "iris", "--to", "iris:1", "--strategy", "replace")
            receiver.wait_for(7, timeout_s=30)
    assert kinds(receiver) == ["started", "completed", "started", "aborted", "rolled_back", "started", "completed"]
    ids = receiver.delivery_ids()
    assert ids == sorted(set(ids)) and len(receiver.attempts) == 7  # once each, in id order, none repeated
    with workspace.db.read() as conn:
        assert [e.id for e in outbox.after(conn, 0, limit=100)] == ids
    assert [e["candidate"] for e in receiver.events()] == ["iris:2"] * 2 + ["iris:1"] * 5


def test_a_receiver_that_fails_twice_then_succeeds_gets_each_event_of_a_shell_rollout_once_in_order(
    settings: Settings, workspace: Workspace
) -> None:
    register_iris(workspace)
    with webhook_receiver(fail_first=2, fail_status=503) as receiver:
        with running_server(hooked(settings, receiver.url), workspace):
            shell(settings)("rollout", "start", "iris", "--to", "iris:2", "--strategy", "replace")
            receiver.wait_for(2, timeout_s=30)
        first, second = receiver.delivery_ids()
    assert kinds(receiver) == ["started", "completed"] and second > first
    assert [int(d.headers["x-shipyard-delivery"]) for d in receiver.attempts] == [first, first, first, second]


def test_two_servers_on_one_store_send_each_event_once(settings: Settings, workspace: Workspace) -> None:
    """Both servers have the receiver configured; only the one holding the controller lease delivers."""
    register_iris(workspace)
    with webhook_receiver() as receiver:
        server_settings = hooked(settings, receiver.url)
        with running_server(server_settings, workspace) as one, running_server(server_settings, workspace) as two:
            started = httpx.post(f"{one}/v1/endpoints/iris/rollouts", json={"to": "iris:2", "strategy": "replace"})
            assert started.status_code == 201, started.text
            receiver.wait_for(2, timeout_s=30)
            again = httpx.post(f"{two}/v1/endpoints/iris/rollouts", json={"to": "iris:1", "strategy": "replace"})
            assert again.status_code == 201, again.text
            receiver.wait_for(4, timeout_s=30)
        # Both servers have stopped, their delivery threads joined: every attempt either made is counted here.
    assert kinds(receiver) == ["started", "completed", "started", "completed"]
    assert len(receiver.attempts) == 4 and len(set(receiver.delivery_ids())) == 4


def test_a_receiver_that_never_answers_does_not_delay_a_live_one_on_a_server(
    settings: Settings, workspace: Workspace
) -> None:
    register_iris(workspace)
    gate = threading.Event()  # the dead receiver holds each request unanswered until the test ends
    with (
        webhook_receiver(gate=gate) as dead,
        webhook_receiver() as live,
        running_server(hooked(settings, dead.url, live.url), workspace) as url,
    ):
        started = httpx.post(f"{url}/v1/endpoints/iris/rollouts", json={"to": "iris:2", "strategy": "replace"})
        assert started.status_code == 201, started.text
        assert [e["event"] for e in live.wait_for(2, timeout_s=30)] == ["started", "completed"]
        # Serial delivery would have made the live receiver wait out the dead one's timeouts and retries;
        # here the dead receiver has not even answered its first request.
        assert len(dead.arrived) <= 1 and not dead.attempts
        gate.set()


def test_events_are_handed_out_in_commit_order_when_two_transactions_overlap(postgres_url: str) -> None:
    """On PostgreSQL a later transaction could take a higher id and commit first; a reader moving its cursor
    past that id would skip the earlier event for good. The writer of the second event waits instead."""
    db = Database(postgres_url)
    try:
        now = datetime.now(UTC)
        with db.write() as conn:
            outbox.add(conn, [("iris", "started", {"n": 1})], now)
            second: list[int] = []
            writer = threading.Thread(target=lambda: second.extend(_add_one(db, now)))
            writer.start()
            _wait_for_advisory_lock_waiter(db)
            with db.read() as reader:
                assert outbox.after(reader, 0, limit=10) == []  # neither is visible yet: nothing to skip
        writer.join(30)
        with db.read() as reader:
            events = outbox.after(reader, 0, limit=10)
        assert [e.payload["n"] for e in events] == [1, 2] and [e.id for e in events][1] == second[0]
    finally:
        db.dispose()


def _add_one(db: Database, now: datetime) -> list[int]:
    with db.write() as conn:
        outbox.add(conn, [("iris", "completed", {"n": 2})], now)
        return [outbox.last_id(conn)]


def _wait_for_advisory_lock_waiter(db: Database, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    query = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    while time.monotonic() < deadline:
        with db.read() as conn:
            if conn.execute(query).scalar_one():
                return
        time.sleep(0.01)
    raise AssertionError("the second writer never waited for the first")


def test_old_events_every_receiver_is_past_are_pruned_and_the_newest_is_kept(workspace: Workspace) -> None:
    db = workspace.db
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=8), now - timedelta(days=1)
    with db.write() as conn:
        outbox.add(conn, [("iris", "held", {"n": n}) for n in range(4)], old)
        outbox.add(conn, [("iris", "held", {"n": 4})], recent)
    ahead, behind = "http://127.0.0.1:9/ahead", "http://127.0.0.1:9/behind"
    with db.write() as conn:
        outbox.register(conn, [receiver_key(ahead)], now)  # at the end: past all five
        outbox.register(conn, [receiver_key(behind)], now)
        behind_row = webhook_receivers.c.receiver == receiver_key(behind)
        conn.execute(sa.update(webhook_receivers).where(behind_row).values(last_id=2))
    # Events 3 and 4 are old, but a receiver another server delivers to (touched just now) has not had them
    # yet; event 5 is recent.
    assert prune_outbox(db, now=now, receivers=[receiver_key(ahead)]) == 2
    assert _left(db) == [2, 3, 4]
    # A month on, that receiver has been idle longer than the retention and no longer holds events back; even
    # so the newest event stays (SQLite would reuse its id).
    assert prune_outbox(db, now=now + timedelta(days=30), receivers=[receiver_key(ahead)]) == 2
    assert _left(db) == [4]
    with db.write() as conn:
        outbox.add(conn, [("iris", "held", {"n": 5})], now)
    with db.read() as conn:
        assert [e.payload["n"] for e in outbox.after(conn, outbox.last_id(conn) - 1, limit=5)] == [5]
        assert outbox.last_id(conn) == 6  # after the kept newest, not a reused id


def _left(db: Database) -> list[int]:
    with db.read() as conn:
        return [r.payload["n"] for r in conn.execute(sa.select(webhook_outbox).order_by(webhook_outbox.c.id))]


def test_the_status_names_receivers_by_masked_url_and_the_store_never_holds_the_url(workspace: Workspace) -> None:
    url = "https://u:secret@127.0.0.1:9/h?token=abc"
    delivery = WebhookDelivery(workspace.db, [url])
    delivery.register()
    (status,) = delivery.status()
    assert status.url == "https://u:***@127.0.0.1:9/h?token=***"
    with workspace.db.read() as conn:
        stored = [tuple(map(str, row)) for row in conn.execute(sa.select(webhook_receivers))]
    assert stored and not any("secret" in v or "abc" in v for row in stored for v in row)


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    """Servers stop their delivery threads; a test that leaked one would deliver into the next test."""
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("shipyard-webhook-") and t.is_alive()]
    assert not leaked, leaked
