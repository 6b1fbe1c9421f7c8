"""The audit trail's records and their hash chain: pure, so writing and verifying agree by construction.

Each event's hash covers its own fields and the previous event's hash. Editing a row changes its hash (the
next row's link no longer matches); deleting one leaves a link to a hash that is not there; reordering
rows breaks both. ``verify`` walks the chain in id order and names the first event that does not hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64
"""The link of the first event: there is nothing before it."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One mutating action: when, who, from where, what, on which target, the state before and after."""

    at: datetime
    actor: str
    action: str
    target: str
    address: str | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    request_id: str | None = None
    prev_hash: str = GENESIS
    hash: str = ""
    id: int | None = None

    def content(self) -> bytes:
        """The canonical bytes the hash covers (sorted keys, UTC microseconds), the same on every database."""
        at = self.at.astimezone(UTC) if self.at.tzinfo else self.at.replace(tzinfo=UTC)
        fields = {
            "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "address": self.address,
            "before": self.before,
            "after": self.after,
            "request_id": self.request_id,
            "prev_hash": self.prev_hash,
        }
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)

    def computed_hash(self) -> str:
        return hashlib.sha256(self.content()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "address": self.address,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "request_id": self.request_id,
            "hash": self.hash,
        }


def chained(event: AuditEvent, prev_hash: str) -> AuditEvent:
    """``event`` linked after an event whose hash is ``prev_hash``, with its own hash filled in."""
    linked = AuditEvent(
        event.at,
        event.actor,
        event.action,
        event.target,
        event.address,
        event.before,
        event.after,
        event.request_id,
        prev_hash,
    )
    return AuditEvent(**{**_fields(linked), "hash": linked.computed_hash()})


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in AuditEvent.__slots__}


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The result of ``verify``: how many events held, and the first that did not (with why)."""

    checked: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify(events: Iterable[AuditEvent]) -> ChainCheck:
    """Walk events in id order: each must link to the one before and hash to what it stores."""
    previous = GENESIS
    previous_id: int | None = None
    checked = 0
    for event in events:
        where = event.id if event.id is not None else checked + 1
        if event.prev_hash != previous:
            after = f"event {previous_id}" if previous_id is not None else "the start of the trail"
            return ChainCheck(
                checked,
                where,
                f"event {where} does not link to {after}: an event before it was deleted, inserted or reordered",
            )
        if event.computed_hash() != event.hash:
            return ChainCheck(
                checked, where, f"event {where} was changed after it was written: its hash no longer matches"
            )
        previous, previous_id = event.hash, event.id
        checked += 1
    return ChainCheck(checked)
