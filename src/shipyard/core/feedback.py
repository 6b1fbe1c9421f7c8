"""Feedback as callers send it, checked against the model before anything is stored.

One item is ``{"request_id", "row"?, "label"?, "reward"?, "timestamp"?}``; a body is one item or
``{"items": [...]}``. Every item is checked first and the whole body is refused when any item is bad,
so a batch is never stored half-way. Errors name the item and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.core.signature import OutputKind, OutputSpec
from shipyard.errors import InvalidArgumentError

MAX_ITEMS = 10_000
_FIELDS = frozenset({"request_id", "row", "label", "reward", "timestamp"})
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class FeedbackInput:
    request_id: str
    row: int
    label: Any
    reward: float | None
    observed_at: datetime | None


def parse_feedback(body: Any, output: OutputSpec, *, max_row: int) -> list[FeedbackInput]:
    """The items of a feedback body, each checked against ``output``; raises on the first bad one."""
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
        parsed = [_item(item, output, max_row, f"item {i}") for i, item in enumerate(items)]
    else:
        parsed = [_item(body, output, max_row, "feedback")]
    seen: dict[tuple[str, int], int] = {}
    for i, item in enumerate(parsed):
        key = (item.request_id, item.row)
        if key in seen:
            raise InvalidArgumentError(
                f"items {seen[key]} and {i} are both for request {item.request_id!r} row {item.row}; send one"
            )
        seen[key] = i
    return parsed


def _item(item: Any, output: OutputSpec, max_row: int, where: str) -> FeedbackInput:
    if not isinstance(item, Mapping):
        raise InvalidArgumentError(f"{where}: must be an object with request_id and a label or reward")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(_FIELDS)}")
    request_id = item.get("request_id")
    if not isinstance(request_id, str) or not _SANE_ID.match(request_id):
        raise InvalidArgumentError(
            f"{where}: request_id must be the request id of a prediction (1-128 letters, digits, '._:-'), "
            f"got {request_id!r}"
        )
    row = item.get("row", 0)
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < max_row:
        raise InvalidArgumentError(f"{where}: row must be a row index from 0 to {max_row - 1}, got {row!r}")
    has_label, has_reward = (
        "label" in item and item["label"] is not None,
        "reward" in item and item["reward"] is not None,
    )
    if not (has_label or has_reward):
        raise InvalidArgumentError(f"{where}: give a label, a reward or both")
    label = _label(item["label"], output, where) if has_label else None
    reward = _number(item["reward"], where, "reward") if has_reward else None
    observed_at = _timestamp(item["timestamp"], where) if item.get("timestamp") is not None else None
    return FeedbackInput(request_id, row, label, reward, observed_at)


def _label(value: Any, output: OutputSpec, where: str) -> Any:
    if output.kind is OutputKind.CLASSIFICATION:
        classes = output.classes or ()
        for known in classes:
            if type(value) is type(known) and value == known:
                return value
            if isinstance(known, int) and isinstance(value, float) and value.is_integer() and int(value) == known:
                return known
        shown = ", ".join(repr(c) for c in classes[:20])
        raise InvalidArgumentError(f"{where}: label {value!r} is not one of the model's classes [{shown}]")
    if output.kind is OutputKind.REGRESSION:
        return _number(value, where, "label")
    raise InvalidArgumentError(f"{where}: labels for {output.kind.value} outputs are not supported; send a reward")


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgumentError(f"{where}: {name} must be a finite number, got {value!r}")
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
        f"{where}: timestamp must be ISO 8601 (e.g. 2026-11-21T10:00:00Z) or epoch seconds, got {value!r}"
    )
