"""Defensive reading and formatting of report fields, shared by the HTML and terminal renderers.

The report is JSON from another process (or another release of Shipyard), so every section may be
null, missing, empty or of an unexpected type; reading it through these helpers keeps both renderers
from crashing on a half-filled report and makes them format the same figure the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

MISSING = "\N{EN DASH}"  # an en dash: reads as "no value" in a table without looking like a zero or a minus


def section(data: Any, key: str) -> Mapping[str, Any]:
    """A nested mapping, or an empty one, so callers can chain lookups without None checks."""
    if not isinstance(data, Mapping):
        return {}
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def items(data: Any, key: str) -> list[Mapping[str, Any]]:
    """The mappings in a list field, dropping anything else the list holds."""
    if not isinstance(data, Mapping):
        return []
    value = data.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def number(data: Any, key: str) -> float | None:
    """A finite number, or None: NaN and infinities would poison axis scales and comparisons."""
    if not isinstance(data, Mapping):
        return None
    return as_number(data.get(key))


def as_number(value: Any) -> float | None:
    """A finite float from an int or float (bools are not numbers here), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def numbers(values: Any) -> list[float | None]:
    """A list of finite numbers or None, aligned with the input list."""
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        return []
    return [as_number(v) for v in values]


def first_number(data: Any, *keys: str) -> float | None:
    """The first of several keys that holds a number: the spec's short names and the service's long ones
    (``tpr`` / ``true_positive_rate``, ``bias`` / ``mean_error``) both render."""
    for key in keys:
        value = number(data, key)
        if value is not None:
            return value
    return None


def notes(data: Any) -> list[tuple[str, str]]:
    """The (figure, reason) notes a section carries to explain a figure that is missing or special."""
    return [(str(k), str(v)) for k, v in section(data, "notes").items() if v]


def text(data: Any, key: str, default: str = "") -> str:
    """A field as display text (not escaped: each renderer escapes for its own medium)."""
    if not isinstance(data, Mapping):
        return default
    value = data.get(key)
    if value is None:
        return default
    return str(value)


def strings(data: Any, key: str) -> list[str]:
    """A list field as display strings."""
    if not isinstance(data, Mapping):
        return []
    value = data.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return []
    return [str(v) for v in value if v is not None]


def tested(feature: Mapping[str, Any]) -> bool:
    """Whether a drift test ran for the feature; the service lists untested ones with a note saying why."""
    return bool(feature.get("test")) and feature.get("drifted") is not None


def drifted_first(features: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drifted features before the others, each group in the service's order (by score there).

    The service already sorts this way, but the renderers promise it themselves because a reader's
    eye goes to the first rows; scores of different tests are not comparable, so no re-sort by score.
    """
    return sorted(features, key=lambda f: f.get("drifted") is not True)


def fmt_number(value: float | None, *, digits: int = 3) -> str:
    """A score or metric to `digits` significant digits; whole numbers keep thousands separators."""
    if value is None:
        return MISSING
    if abs(value) >= 1000 or (float(value).is_integer() and abs(value) >= 1):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if value != 0 and abs(value) < 1e-4:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def fmt_count(value: float | None) -> str:
    """A count with thousands separators."""
    return MISSING if value is None else f"{round(value):,}"


def fmt_rate(value: float | None) -> str:
    """A fraction in [0, 1] as a percentage with enough digits to tell 0.25% from 0%."""
    if value is None:
        return MISSING
    percent = value * 100
    if percent == 0:
        return "0%"
    if abs(percent) < 0.01:
        return "<0.01%"
    if abs(percent) < 10:
        return f"{percent:.2f}%"
    return f"{percent:.1f}%"


def fmt_ms(value: float | None) -> str:
    """A latency in milliseconds."""
    if value is None:
        return MISSING
    return f"{value:.3g} ms" if value < 1000 else f"{value / 1000:.3g} s"


def fmt_duration(seconds: float | None) -> str:
    """A range or window length the way people say it: "1 h", "5 min", "1 h 30 min"."""
    if seconds is None or seconds < 0:
        return MISSING
    if seconds < 60:
        return f"{seconds:g} s"
    parts = []
    remaining = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts[:2])


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp, or None when it is missing or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _zone(moment: datetime) -> str:
    offset = moment.utcoffset()
    if offset is None:
        return ""
    return " UTC" if not offset else moment.strftime(" %z")


def fmt_time(value: Any) -> str:
    """A timestamp to the minute with its zone, or the raw text when it is not ISO 8601."""
    moment = parse_time(value)
    if moment is None:
        return MISSING if value in (None, "") else str(value)
    return moment.strftime("%Y-%m-%d %H:%M") + _zone(moment)


def fmt_range(window: Mapping[str, Any]) -> str:
    """The covered range, its length and the stored window size in one phrase."""
    start, end = window.get("start"), window.get("end")
    if not start and not end:
        return "range unknown"
    phrase = f"{fmt_time(start)} → {fmt_time(end)}"
    begin, finish = parse_time(start), parse_time(end)
    if begin is not None and finish is not None and begin.date() == finish.date() and _zone(begin) == _zone(finish):
        # Same day: the end needs only its clock time, which keeps the header on one line.
        phrase = f"{begin.strftime('%Y-%m-%d %H:%M')} → {finish.strftime('%H:%M')}{_zone(finish)}"
    details = []
    seconds = number(window, "seconds")
    if seconds is not None:
        details.append(fmt_duration(seconds))
    window_s = number(window, "window_seconds")
    if window_s is not None:
        details.append(f"windows of {fmt_duration(window_s)}")
    return f"{phrase} ({', '.join(details)})" if details else phrase


def errors_by_status(errors: Mapping[str, Any]) -> str:
    """Non-zero error counts by HTTP status, e.g. "422: 3, 500: 1"."""
    return ", ".join(f"{code}: {fmt_count(number(errors, code))}" for code in errors if number(errors, code))


def unrouted_text(report: Mapping[str, Any]) -> str | None:
    """Requests refused before a version was chosen, which no version's figures include; None when none."""
    unrouted = section(report, "unrouted")
    requests, dropped = number(unrouted, "requests"), number(unrouted, "dropped")
    if not requests and not dropped:
        return None
    by_status = errors_by_status(section(unrouted, "errors"))
    line = f"{fmt_count(requests or 0)} requests refused before reaching a version"
    line += f" ({by_status})" if by_status else ""
    if dropped:
        line += f"; {fmt_count(dropped)} not profiled (monitoring buffer full)"
    return line


def estimate_basis(estimated: Mapping[str, Any]) -> str:
    """What the label-free estimate rests on: "calibrated on 3,000 holdout rows", or why it is uncalibrated
    (then it is the model's own mean confidence, which reads high for an overconfident model)."""
    calibration = section(estimated, "calibration")
    if calibration:
        data = text(calibration, "data", "reference")
        return f"calibrated on {fmt_count(number(calibration, 'rows'))} {data} rows"
    return text(estimated, "note") or "uncalibrated"


def other_scores(feature: Mapping[str, Any]) -> str:
    """The scores of the tests that did not decide, e.g. "ks 0.22 (p 3e-05) · wasserstein 0.8".

    A test's p-value, which the service files as a score named `<test>_p_value`, goes next to its test.
    """
    scores = section(feature, "scores")
    test = text(feature, "test")
    parts = []
    for name, value in scores.items():
        if name == test or (name.endswith("_p_value") and name.removesuffix("_p_value") in scores):
            continue
        p_value = as_number(scores.get(f"{name}_p_value"))
        parts.append(
            f"{name} {fmt_number(as_number(value))}" + (f" (p {fmt_number(p_value)})" if p_value is not None else "")
        )
    return " · ".join(parts)
