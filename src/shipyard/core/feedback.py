"""Feedback as callers send it, checked against the model before anything is stored.

One item is ``{"request_id", "row"?, "label"?, "reward"?, "timestamp"?, "correction"?}``; a body is one item
or ``{"items": [...]}``. Every item is checked first and the whole body is refused when any item is bad,
so a batch is never stored half-way. Errors name the item and the field.

Feedback already stored is never replaced silently: the same value again changes nothing (a retry), a value
for a field still empty fills it (a reward after a label), and a different value is a conflict unless the
item says it is a correction (``compare``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shipyard.core.inputs import describe_value
from shipyard.core.signature import OutputKind, OutputSpec
from shipyard.errors import ConflictError, InvalidArgumentError

MAX_ITEMS = 10_000
_FIELDS = frozenset({"request_id", "row", "label", "reward", "timestamp", "correction"})
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class FeedbackInput:
    """One checked item; ``correction`` says a different value may replace the stored one."""

    request_id: str
    row: int
    label: Any
    reward: float | None
    observed_at: datetime | None
    correction: bool = False


class FeedbackConflictError(ConflictError):
    """Feedback for a prediction that already has a different value, sent without saying it corrects it."""

    code = "feedback_conflict"


class Outcome(StrEnum):
    """What an item does to the feedback already stored for its request id and row."""

    UNCHANGED = "unchanged"
    """The same values again (a retry), or nothing new: nothing to write."""
    FILLED = "filled"
    """A field that was empty gets a value (a label after a reward-only item); nothing is replaced."""
    CORRECTED = "corrected"
    """A stored value is replaced by an explicit correction; the old one goes to the history."""
    CONFLICT = "conflict"
    """A stored value would be replaced without ``correction``: the body is refused."""


def compare(stored_label: Any, stored_reward: float | None, item: FeedbackInput) -> Outcome:
    """The outcome of ``item`` against the stored label and reward (None where a field is empty)."""
    differs = filled = False
    for old, new in ((stored_label, item.label), (stored_reward, item.reward)):
        if new is None:
            continue
        if old is None:
            filled = True
        elif not same_value(old, new):
            differs = True
    if differs:
        return Outcome.CORRECTED if item.correction else Outcome.CONFLICT
    return Outcome.FILLED if filled else Outcome.UNCHANGED


def same_value(a: Any, b: Any) -> bool:
    """Equal as feedback: numbers by value (a regression label 2 is 2.0), anything else by type and value."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return type(a) is type(b) and bool(a == b)


def conflict_message(
    endpoint: str, item: FeedbackInput, stored_label: Any, stored_reward: float | None, others: int
) -> str:
    """One line naming the request, what is stored, what was sent, and the two ways to correct it."""
    stored, sent = [], []
    for name, old, new in (("label", stored_label, item.label), ("reward", stored_reward, item.reward)):
        if old is not None and new is not None and not same_value(old, new):
            stored.append(f"{name} {old!r}")
            sent.append(f"{name} {new!r}")
    more = f" ({others} more item(s) in this body conflict too)" if others else ""
    return (
        f"feedback for request {item.request_id!r} row {item.row} already has {' and '.join(stored)}, not "
        f"{' and '.join(sent)}{more}; nothing was stored. To replace it, send the item again with "
        f'"correction": true, or PUT /v1/endpoints/{endpoint}/feedback'
    )


def parse_feedback(body: Any, output: OutputSpec, *, max_row: int, correction: bool = False) -> list[FeedbackInput]:
    """The items of a feedback body, each checked against ``output``; raises on the first bad one.

    ``correction`` marks every item a correction (``PUT``), whatever the items say.
    """
    if not isinstance(body, Mapping):
        raise InvalidArgumentError(
            'feedback must be a JSON object: {"request_id": ..., "label": ...} or {"items": [...]}'
        )
    if "items" in body:
        if set(body) != {"items"}:
            raise InvalidArgumentError("a feedback batch has only 'items'; put request_id, label, … inside each item")
        items = body["items"]
        if not isinstance(items, list) or not items:
            raise InvalidArgumentError("'items' must be a non-empty list of feedback items")
        if len(items) > MAX_ITEMS:
            raise InvalidArgumentError(f"'items' has {len(items)} items, over the limit of {MAX_ITEMS}; split it")
        parsed = [_item(item, output, max_row, f"item {i}", correction) for i, item in enumerate(items)]
    else:
        parsed = [_item(body, output, max_row, "feedback", correction)]
    seen: dict[tuple[str, int], int] = {}
    for i, item in enumerate(parsed):
        key = (item.request_id, item.row)
        if key in seen:
            raise InvalidArgumentError(
                f"items {seen[key]} and {i} are both for request {item.request_id!r} row {item.row}; send one"
            )
        seen[key] = i
    return parsed


def _item(item: Any, output: OutputSpec, max_row: int, where: str, correction: bool) -> FeedbackInput:
    if not isinstance(item, Mapping):
        raise InvalidArgumentError(f"{where}: must be an object with request_id and a label or reward")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(_FIELDS)}")
    request_id = item.get("request_id")
    if not isinstance(request_id, str) or not _SANE_ID.match(request_id):
        raise InvalidArgumentError(
            f"{where}: request_id must be the request id of a prediction (1-128 letters, digits, '._:-'), "
            f"got {describe_value(request_id)}"
        )
    row = item.get("row", 0)
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < max_row:
        raise InvalidArgumentError(
            f"{where}: row must be a row index from 0 to {max_row - 1}, got {describe_value(row)}"
        )
    has_label, has_reward = (
        "label" in item and item["label"] is not None,
        "reward" in item and item["reward"] is not None,
    )
    if not (has_label or has_reward):
        raise InvalidArgumentError(f"{where}: give a label, a reward or both")
    label = _label(item["label"], output, where) if has_label else None
    reward = _number(item["reward"], where, "reward") if has_reward else None
    observed_at = _timestamp(item["timestamp"], where) if item.get("timestamp") is not None else None
    flagged = item.get("correction", False)
    if not isinstance(flagged, bool):
        raise InvalidArgumentError(f"{where}: correction must be true or false, got {describe_value(flagged)}")
    return FeedbackInput(request_id, row, label, reward, observed_at, correction or flagged)


def _label(value: Any, output: OutputSpec, where: str) -> Any:
    if output.kind is OutputKind.CLASSIFICATION:
        classes = output.classes or ()
        for known in classes:
            if type(value) is type(known) and value == known:
                return value
            if isinstance(known, int) and isinstance(value, float) and value.is_integer() and int(value) == known:
                return known
        shown = ", ".join(repr(c) for c in classes[:20])
        raise InvalidArgumentError(
            f"{where}: label {describe_value(value)} is not one of the model's classes [{shown}]"
        )
    if output.kind is OutputKind.REGRESSION:
        return _number(value, where, "label")
    raise InvalidArgumentError(f"{where}: labels for {output.kind.value} outputs are not supported; send a reward")


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgumentError(f"{where}: {name} must be a finite number, got {describe_value(value)}")
    return float(value)


def _timestamp(value: Any, where: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise InvalidArgumentError(
        f"{where}: timestamp must be ISO 8601 (e.g. 2026-11-21T10:00:00Z) or epoch seconds, got {describe_value(value)}"
    )
