"""Notification channels' use cases: declare, list, remove and try a channel; audited here, once.

``channel.add`` and ``channel.remove`` are recorded in the change's own transaction. The secrets a channel
uses (an HMAC key, an SMTP login) are named by environment variable and checked to be set in the declaring
process, which is the server for the HTTP route, and for the CLI the machine that usually runs it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.alerts.events import AlertEvent
from shipyard.core.identity import LOCAL_ACTOR, Actor
from shipyard.errors import ConflictError, NotFoundError
from shipyard.notify.base import Outcome
from shipyard.notify.channel import Channel, check_channel, receiver_key
from shipyard.notify.delivery import load_channels, send_once
from shipyard.services.audit import record
from shipyard.store import channels as repo
from shipyard.store import outbox
from shipyard.store.db import Database

TEST_HOLD_S = 300.0
"""A test alert sent to Alertmanager expires after this rather than a real alert's hold."""


def channel_target(name: str) -> str:
    return f"channel:{name}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """A channel and how its delivery stands: events delivered, given up on, and the last problem."""

    channel: Channel
    delivered: int
    failed: int
    attempts: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.channel.to_dict(),
            "delivered": self.delivered,
            "failed": self.failed,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


class ChannelService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.environ = environ if environ is not None else os.environ

    def add(
        self,
        name: str,
        kind: str,
        options: Mapping[str, Any],
        *,
        severities: Sequence[str] = (),
        endpoints: Sequence[str] = (),
        actor: Actor = LOCAL_ACTOR,
    ) -> Channel:
        """Declare a channel; it gets alert events from now on (not the ones before it)."""
        checked = check_channel(name, kind, options, severities=severities, endpoints=endpoints, environ=self.environ)
        now = self.clock()
        channel = dataclasses.replace(checked, created_by=actor.principal.label, created_at=now)
        with self.db.write() as conn:
            if repo.get(conn, name) is not None:
                raise ConflictError(
                    f"a channel named {name!r} exists; remove it first: shipyard channels remove {name}"
                )
            row = repo.ChannelRow(name, kind, channel.stored(), channel.created_by, now)
            repo.insert(conn, row, receiver=channel.receiver)
            record(conn, actor, "channel.add", channel_target(name), after=channel.to_dict(), at=now)
        return channel

    def get(self, name: str) -> Channel:
        with self.db.read() as conn:
            row = repo.get(conn, name)
        if row is None:
            raise NotFoundError(f"no channel {name!r}; `shipyard channels list` shows the channels")
        return Channel.from_stored(row.name, row.kind, row.config, created_by=row.created_by, created_at=row.created_at)

    def list(self) -> list[ChannelStatus]:
        """Every channel with its delivery counts (from its cursor in the store)."""
        found = []
        for channel in load_channels(self.db).values():
            with self.db.read() as conn:
                state = outbox.state(conn, channel.receiver)
            if state is None:
                found.append(ChannelStatus(channel, 0, 0, 0, None))
            else:
                found.append(ChannelStatus(channel, state.delivered, state.failed, state.attempts, state.last_error))
        return found

    def remove(self, name: str, *, actor: Actor = LOCAL_ACTOR) -> Channel:
        """Stop sending to a channel; events not delivered to it yet are dropped with it."""
        channel = self.get(name)
        with self.db.write() as conn:
            if not repo.delete(conn, name, receiver=receiver_key(name)):
                raise NotFoundError(f"no channel {name!r}; `shipyard channels list` shows the channels")
            record(conn, actor, "channel.remove", channel_target(name), before=channel.to_dict(), at=self.clock())
        return channel

    def test(self, name: str) -> Outcome:
        """Send a sample firing alert to the channel now, outside the outbox, and say what it answered."""
        channel = self.get(name)
        if channel.kind == "alertmanager":
            channel = dataclasses.replace(channel, config={**channel.config, "hold_s": TEST_HOLD_S})
        return send_once(channel, sample_alert(channel, now=self.clock()), environ=self.environ, clock=self.clock)


def sample_alert(channel: Channel, *, now: datetime) -> AlertEvent:
    """What ``channels test`` sends: a firing alert that says it is a test, matching the channel's filters."""
    return AlertEvent(
        status="firing",
        rule="shipyard-channel-test",
        endpoint=channel.endpoints[0] if channel.endpoints else "test",
        metric="test",
        value=1.0,
        op=">",
        threshold=0.0,
        severity=channel.severities[0] if channel.severities else "info",
        started_at=now,
        labels={"test": "true"},
        summary=f"A test notification from `shipyard channels test {channel.name}`: nothing is wrong.",
    )
