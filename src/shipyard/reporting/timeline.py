"""The per-window timeline of a version, turned into points and time-axis ticks a chart can draw.

A week of 5-minute windows is 2,016 windows; drawing each would bloat the one-file report and blur
the lines, so long timelines are merged into at most `max_points` buckets (counts summed, drift
maxima kept as maxima, rates averaged over the windows that have them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from shipyard.monitoring.report import TimelineWindow
from shipyard.reporting.fields import finite, fmt_range

MAX_POINTS = 120
TICK_STEPS_S = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


@dataclass(frozen=True)
class Point:
    """One window (or a bucket of adjacent windows) of a version's timeline."""

    x: float  # seconds since the epoch at the window's middle, or the window's index when times cannot be ordered
    start: datetime
    end: datetime
    windows: int
    requests: float | None
    drift_max_score: float | None
    drifted_count: float | None
    accuracy: float | None
    estimated_accuracy: float | None
    reward_rate: float | None

    @property
    def label(self) -> str:
        """The time range for tooltips, e.g. "2026-11-21 09:00 → 09:05 UTC (3 windows)"."""
        span = fmt_range(self.start, self.end)
        return span if self.windows == 1 else f"{span} ({self.windows} windows)"


@dataclass(frozen=True)
class Timeline:
    """Points in time order, whether x is real time, and how many stored windows they summarise."""

    points: tuple[Point, ...]
    timed: bool
    windows: int
    zone: tzinfo | None


def _middle(window: TimelineWindow) -> datetime:
    try:
        return window.start + (window.end - window.start) / 2
    except TypeError:  # one naive, one aware: fall back to the start
        return window.start


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _point(index: int, window: TimelineWindow, middles: Sequence[datetime], timed: bool) -> Point:
    return Point(
        x=_epoch(middles[index]) if timed else float(index),
        start=window.start,
        end=window.end,
        windows=1,
        requests=float(window.requests),
        drift_max_score=finite(window.drift_max_score),
        drifted_count=float(len(window.drifted_features)),
        accuracy=finite(window.accuracy),
        estimated_accuracy=finite(window.estimated_accuracy),
        reward_rate=finite(window.reward_rate),
    )


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _largest(values: Sequence[float | None]) -> float | None:
    return max((v for v in values if v is not None), default=None)


def _merge(points: Sequence[Point]) -> Point:
    requests = [p.requests for p in points]
    return Point(
        x=sum(p.x for p in points) / len(points),
        start=points[0].start,
        end=points[-1].end,
        windows=sum(p.windows for p in points),
        requests=sum(r for r in requests if r is not None) if any(r is not None for r in requests) else None,
        drift_max_score=_largest([p.drift_max_score for p in points]),
        drifted_count=_largest([p.drifted_count for p in points]),
        accuracy=_mean([p.accuracy for p in points]),
        estimated_accuracy=_mean([p.estimated_accuracy for p in points]),
        reward_rate=_mean([p.reward_rate for p in points]),
    )


def build_timeline(windows: Sequence[TimelineWindow], *, max_points: int = MAX_POINTS) -> Timeline:
    """Chartable points from the report's timeline, merged into buckets when there are many."""
    middles = [_middle(w) for w in windows]
    # Mixing naive and aware times has no order; plot by index instead.
    timed = len({m.tzinfo is not None for m in middles}) == 1
    points = [_point(i, w, middles, timed) for i, w in enumerate(windows)]
    points.sort(key=lambda p: p.x)
    if len(points) > max_points:
        size = math.ceil(len(points) / max_points)
        points = [_merge(points[i : i + size]) for i in range(0, len(points), size)]
    zone = middles[0].tzinfo if timed else None
    return Timeline(points=tuple(points), timed=timed, windows=len(windows), zone=zone)


def time_ticks(timeline: Timeline, *, max_ticks: int = 6) -> list[tuple[float, str]]:
    """Ticks at round clock times (every 15 min, hour, 6 h, day …) so the axis reads naturally."""
    if not timeline.points:
        return []
    first, last = timeline.points[0].x, timeline.points[-1].x
    if not timeline.timed:
        step = max(1, math.ceil((last - first + 1) / max_ticks))
        return [(float(i), f"#{i + 1}") for i in range(int(first), int(last) + 1, step)]
    span = max(last - first, 1.0)
    step = next((s for s in TICK_STEPS_S if span / s <= max_ticks - 1), TICK_STEPS_S[-1])
    zone = timeline.zone or UTC
    multi_day = datetime.fromtimestamp(first, zone).date() != datetime.fromtimestamp(last, zone).date()
    pattern = "%m-%d" if step >= 86400 else ("%m-%d %H:%M" if multi_day else "%H:%M")
    ticks = []
    tick = math.ceil(first / step) * step
    while tick <= last + 1e-6:
        ticks.append((float(tick), datetime.fromtimestamp(tick, zone).strftime(pattern)))
        tick += step
    if len(timeline.points) == 1:  # one window: name its span, not its midpoint's odd minute
        only = timeline.points[0]
        return [(first, f"{only.start.strftime('%H:%M')}\N{EN DASH}{only.end.strftime('%H:%M')}")]
    if not ticks:  # a short range between round times: label the first point rather than leave the axis bare
        ticks.append((first, datetime.fromtimestamp(first, zone).strftime(pattern)))
    return ticks
