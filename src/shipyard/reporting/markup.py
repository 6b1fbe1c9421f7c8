"""Escape-safe HTML pieces and the colour palette shared by the report's sections.

Every piece escapes the text it is given, so a section cannot forget to: feature names, category
names and group names are user data.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from shipyard.reporting.svg import Series, time_chart
from shipyard.reporting.timeline import Timeline, time_ticks

# A colour-blind-safe palette (Tableau 10); reference is always blue and live always orange.
REFERENCE_COLOR = "#4c78a8"
LIVE_COLOR = "#f58518"
ACCURACY_COLOR = "#4c78a8"
ESTIMATE_COLOR = "#f58518"
REWARD_COLOR = "#54a24b"
DRIFT_COLOR = "#e45756"
COUNT_COLOR = "#b279a2"
REQUESTS_COLOR = "#8c8c8c"
DIAGONAL_COLOR = "#9a9a9a"


def empty(message: str) -> str:
    """The short line a section shows instead of figures it does not have yet."""
    return f'<p class="empty">{escape(message)}</p>'


def figures(pairs: Sequence[tuple[str, str]]) -> str:
    """Headline figures as labelled tiles."""
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in pairs)
    return f'<dl class="figures">{cells}</dl>'


def table(headers: Sequence[str], rows: Sequence[str], *, numeric: set[int], css: str) -> str:
    """A table from pre-built rows; `numeric` column indexes are right-aligned."""
    num = ' class="num"'
    head = "".join(f'<th scope="col"{num if i in numeric else ""}>{escape(h)}</th>' for i, h in enumerate(headers))
    # The wrapper scrolls a wide table sideways on a phone instead of widening the whole page.
    body = f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="table-scroll">{body}</div>'


def cell(value: str, *, numeric: bool = False, warn: bool = False) -> str:
    """One table cell; `warn` colours a figure that needs a look (out-of-range values, violations)."""
    classes = " ".join(c for c, on in (("num", numeric), ("warn", warn)) if on)
    return f'<td class="{classes}">{escape(value)}</td>' if classes else f"<td>{escape(value)}</td>"


def notes_list(pairs: Sequence[tuple[str, str]]) -> str:
    """The service's reasons for missing or special figures ("ROC AUC needs …"), so a dash is explained."""
    if not pairs:
        return ""
    entries = "".join(f"<li><strong>{escape(name)}</strong>: {escape(reason)}</li>" for name, reason in pairs)
    return f'<ul class="notes">{entries}</ul>'


def has(values: Sequence[float | None]) -> bool:
    """Whether a series has anything to draw."""
    return any(v is not None for v in values)


def time_figure(caption: str, timeline: Timeline, series: Sequence[Series], **options: Any) -> str:
    """A captioned chart of per-window values against time."""
    if not timeline.timed:
        x_label = "window"
    elif timeline.zone is not None and not timeline.zone.utcoffset(None):
        x_label = "time (UTC)"
    else:
        x_label = "time"
    chart = time_chart(
        title=caption,
        x=[p.x for p in timeline.points],
        x_ticks=time_ticks(timeline),
        point_labels=[p.label for p in timeline.points],
        series=series,
        x_label=x_label,
        **options,
    )
    return f"<figure><figcaption>{escape(caption)}</figcaption>{chart}</figure>"
