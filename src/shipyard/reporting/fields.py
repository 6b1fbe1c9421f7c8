"""Formatting of report figures, shared by the HTML and terminal renderers.

Both renderers format the same figure the same way through these helpers. A figure the report holds may
still be undefined (NaN from an estimate, a test's statistic): ``finite`` turns it into None, which every
formatter shows as a dash, so no "nan" reaches a page or a terminal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shipyard.core.jsonsafe import json_value
from shipyard.monitoring.drift_records import FeatureDrift
from shipyard.monitoring.report import Estimate, MonitoringReport

MISSING = "\N{EN DASH}"  # an en dash: reads as "no value" in a table without looking like a zero or a minus


def finite(value: float | None) -> float | None:
    """A finite number, or None: NaN and infinities would poison axis scales and comparisons."""
    if value is None or isinstance(value, bool):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def label_text(value: Any, default: str = "") -> str:
    """A class, group or positive label as display text, the way the report's JSON writes it."""
    shown = json_value(value)
    return default if shown is None else str(shown)


def tested(feature: FeatureDrift) -> bool:
    """Whether a drift test ran for the feature; the service lists untested ones with a note saying why."""
    return bool(feature.test)


def drifted_first(features: Sequence[FeatureDrift]) -> list[FeatureDrift]:
    """Drifted features before the others, each group in the service's order (by score there).

    The service already sorts this way, but the renderers promise it themselves because a reader's
    eye goes to the first rows; scores of different tests are not comparable, so no re-sort by score.
    """
    return sorted(features, key=lambda f: f.drifted is not True)


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


def _zone(moment: datetime) -> str:
    offset = moment.utcoffset()
    if offset is None:
        return ""
    return " UTC" if not offset else moment.strftime(" %z")


def fmt_time(moment: datetime) -> str:
    """A timestamp to the minute with its zone."""
    return moment.strftime("%Y-%m-%d %H:%M") + _zone(moment)


def fmt_range(start: datetime, end: datetime, *, seconds: float | None = None, window_s: float | None = None) -> str:
    """The covered range, its length and the stored window size in one phrase."""
    phrase = f"{fmt_time(start)} → {fmt_time(end)}"
    if start.date() == end.date() and _zone(start) == _zone(end):
        # Same day: the end needs only its clock time, which keeps the header on one line.
        phrase = f"{start.strftime('%Y-%m-%d %H:%M')} → {end.strftime('%H:%M')}{_zone(end)}"
    details = []
    if seconds is not None:
        details.append(fmt_duration(seconds))
    if window_s is not None:
        details.append(f"windows of {fmt_duration(window_s)}")
    return f"{phrase} ({', '.join(details)})" if details else phrase


def report_range(report: MonitoringReport) -> str:
    """The report's range with its length and window size."""
    window = report.window
    return fmt_range(window.start, window.end, seconds=float(window.seconds), window_s=float(window.window_s))


def errors_by_status(errors: Mapping[str, int]) -> str:
    """Non-zero error counts by HTTP status, e.g. "422: 3, 500: 1"."""
    return ", ".join(f"{code}: {fmt_count(count)}" for code, count in errors.items() if count)


def unrouted_text(report: MonitoringReport) -> str | None:
    """Requests refused before a version was chosen, which no version's figures include; None when none."""
    unrouted = report.unrouted
    requests, dropped = unrouted.requests, unrouted.dropped
    if not requests and not dropped:
        return None
    by_status = errors_by_status(unrouted.errors)
    line = f"{fmt_count(requests or 0)} requests refused before reaching a version"
    line += f" ({by_status})" if by_status else ""
    if dropped:
        line += f"; {fmt_count(dropped)} not profiled (monitoring buffer full)"
    return line


def estimate_basis(estimated: Estimate) -> str:
    """What the label-free estimate rests on: "calibrated on 3,000 holdout rows", or why it is uncalibrated
    (then it is the model's own mean confidence, which reads high for an overconfident model)."""
    calibration = estimated.calibration
    if calibration is not None:
        return f"calibrated on {fmt_count(calibration.rows)} {calibration.data} rows"
    return estimated.note or "uncalibrated"


def other_scores(feature: FeatureDrift) -> str:
    """The scores of the tests that did not decide, e.g. "ks 0.22 (p 3e-05) · wasserstein 0.8".

    A test's p-value, which the service files as a score named `<test>_p_value`, goes next to its test.
    """
    scores = feature.scores
    test = feature.test or ""
    parts = []
    for name, value in scores.items():
        if name == test or (name.endswith("_p_value") and name.removesuffix("_p_value") in scores):
            continue
        p_value = finite(scores.get(f"{name}_p_value"))
        parts.append(
            f"{name} {fmt_number(finite(value))}" + (f" (p {fmt_number(p_value)})" if p_value is not None else "")
        )
    return " · ".join(parts)
