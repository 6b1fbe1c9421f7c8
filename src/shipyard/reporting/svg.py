"""Small inline-SVG charts (grouped bars, lines over time, a reliability and a precision-recall curve) in Python.

The report must open offline and stay one file, so no JavaScript plotting library: each chart is a
few hundred bytes of SVG with an accessible name (`role="img"`, `aria-label`, `<title>`) and
per-mark `<title>` tooltips, styled by the page's CSS classes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from shipyard.reporting.fields import fmt_number

MARGIN_LEFT = 56
MARGIN_RIGHT = 14
MARGIN_BOTTOM = 46
LEGEND_ROW_PX = 16
CHAR_PX = 6.2  # average glyph width of the 11 px sans-serif chart font, for laying out labels
MAX_LABEL_CHARS = 14
TURNED_LABEL_CHARS = 10  # a turned label this long still fits left of the first bar
LABEL_GAP_PX = 17  # labels turned 45° need this much room between ticks not to touch (11 px text / sin 45°)


@dataclass(frozen=True)
class Series:
    """One named set of values drawn in one colour, as bars or as a line."""

    name: str
    values: Sequence[float | None]
    color: str
    kind: str = "line"  # "line" or "bars"
    dashed: bool = False


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _short(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def nice_ticks(low: float, high: float, *, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values spanning [low, high], so axes read 0, 0.1, 0.2 rather than 0, 0.137.

    `integer` keeps the step whole, for counts, where a tick at 1.5 features would be nonsense.
    """
    if not high > low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    if integer:
        raw = max(raw, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step + 1e-9) * step
    ticks: list[float] = []
    value = start
    while value < high + step * 0.5 and len(ticks) < 20:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high - 1e-12:
        ticks.append(round(value, 12))
    return ticks


def _legend(series: Sequence[tuple[str, str, str, bool]], width: int) -> tuple[list[str], int]:
    """Legend marks laid out left to right, wrapping, above the plot; returns (parts, height)."""
    parts: list[str] = []
    x: float = MARGIN_LEFT
    row = 0
    for name, color, mark, dashed in series:
        item_px = 16 + len(name) * CHAR_PX + 14
        if x + item_px > width and x > MARGIN_LEFT:
            x, row = MARGIN_LEFT, row + 1
        y = 6 + row * LEGEND_ROW_PX
        if mark == "bars":
            parts.append(f'<rect x="{_num(x)}" y="{y}" width="10" height="10" fill="{color}"/>')
        else:
            dash = ' stroke-dasharray="4 3"' if dashed else ""
            parts.append(
                f'<line x1="{_num(x)}" y1="{y + 5}" x2="{_num(x + 12)}" y2="{y + 5}" stroke="{color}" '
                f'stroke-width="2"{dash}/>'
            )
        parts.append(f'<text x="{_num(x + 16)}" y="{y + 9}">{escape(name)}</text>')
        x += item_px
    return parts, (row + 1) * LEGEND_ROW_PX + 8


def _open(title: str, width: int, height: int, description: str) -> str:
    label = escape(title)
    return (
        f'<svg class="chart" role="img" aria-label="{label}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{label}</title><desc>{escape(description)}</desc>'
    )


def _y_axis(
    ticks: Sequence[float],
    *,
    to_y: Callable[[float], float],
    left: float,
    right: float,
    label: str,
    top: float,
    bottom: float,
    fmt: Callable[[float], str],
) -> list[str]:
    parts = []
    for tick in ticks:
        y = _num(to_y(tick))
        parts.append(f'<line class="grid" x1="{_num(left)}" y1="{y}" x2="{_num(right)}" y2="{y}"/>')
        parts.append(
            f'<text class="tick" x="{_num(left - 5)}" y="{y}" text-anchor="end" dy="0.32em">{fmt(tick)}</text>'
        )
    middle = _num((top + bottom) / 2)
    parts.append(
        f'<text class="axis-label" x="12" y="{middle}" text-anchor="middle" '
        f'transform="rotate(-90 12 {middle})">{escape(label)}</text>'
    )
    parts.append(f'<line class="axis" x1="{_num(left)}" y1="{_num(bottom)}" x2="{_num(right)}" y2="{_num(bottom)}"/>')
    return parts


def grouped_bars(
    *,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    y_label: str,
    x_label: str,
    width: int = 420,
    height: int = 250,
    y_format: Callable[[float], str] = fmt_number,
    value_format: Callable[[float | None], str] = fmt_number,
) -> str:
    """Side-by-side bars per category (reference next to live), with a legend and axis labels."""
    legend, legend_px = _legend([(s.name, s.color, "bars", False) for s in series], width)
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    n = max(len(categories), 1)
    group_px = (right - left) / n
    # Long or many labels are turned and thinned so they never overlap; the tooltip has the full name.
    turned = max((len(_short(c)) for c in categories), default=0) * CHAR_PX > group_px - 2
    limit = TURNED_LABEL_CHARS if turned else MAX_LABEL_CHARS
    longest = max((len(_short(c, limit)) for c in categories), default=0)
    every = max(1, math.ceil(LABEL_GAP_PX / group_px)) if turned else 1
    label_px = longest * CHAR_PX * 0.71 + 12 if turned else 18  # a 45° label drops sin 45° of its length
    top, bottom = legend_px + 4, height - label_px - 18
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    ticks = nice_ticks(0.0, max(peak, 1e-9) * 1.05, count=5)
    y_top = ticks[-1]

    def to_y(value: float) -> float:
        return bottom - (bottom - top) * (value / y_top)

    parts = [_open(title, width, height, f"{len(categories)} categories; {', '.join(s.name for s in series)}")]
    parts += legend
    parts += _y_axis(ticks, to_y=to_y, left=left, right=right, label=y_label, top=top, bottom=bottom, fmt=y_format)
    bar_px = group_px * 0.8 / max(len(series), 1)
    for i, category in enumerate(categories):
        x0 = left + i * group_px + group_px * 0.1
        tip = "; ".join(f"{s.name} {value_format(s.values[i] if i < len(s.values) else None)}" for s in series)
        parts.append(f"<g><title>{escape(category)}: {escape(tip)}</title>")
        for j, s in enumerate(series):
            value = s.values[i] if i < len(s.values) else None
            if value is None:
                continue
            y = to_y(max(value, 0.0))
            parts.append(
                f'<rect x="{_num(x0 + j * bar_px)}" y="{_num(y)}" width="{_num(max(bar_px - 1, 1))}" '
                f'height="{_num(bottom - y)}" fill="{s.color}"/>'
            )
        parts.append("</g>")
        if i % every == 0:
            cx = _num(left + (i + 0.5) * group_px)
            label = escape(_short(category, limit))
            if turned:
                parts.append(
                    f'<text class="tick" x="{cx}" y="{_num(bottom + 10)}" text-anchor="end" '
                    f'transform="rotate(-45 {cx} {_num(bottom + 10)})">{label}</text>'
                )
            else:
                parts.append(f'<text class="tick" x="{cx}" y="{_num(bottom + 14)}" text-anchor="middle">{label}</text>')
    parts.append(
        f'<text class="axis-label" x="{_num((left + right) / 2)}" y="{height - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def time_chart(
    *,
    title: str,
    x: Sequence[float],
    x_ticks: Sequence[tuple[float, str]],
    series: Sequence[Series],
    y_label: str,
    x_label: str,
    point_labels: Sequence[str] = (),
    width: int = 520,
    height: int = 230,
    y_min: float | None = None,
    y_max: float | None = None,
    y_format: Callable[[float], str] = fmt_number,
    integer: bool = False,
) -> str:
    """Values over time as lines (broken where a window has no value) or as columns per window.

    With columns, the time axis is widened by half a window on each side so the first and last
    columns stand inside the plot instead of over the y axis.
    """
    legend, legend_px = _legend([(s.name, s.color, s.kind, s.dashed) for s in series], width)
    top, bottom = legend_px + 4, height - MARGIN_BOTTOM
    left, right = MARGIN_LEFT + 6, width - MARGIN_RIGHT - 6
    values = [v for s in series for v in s.values if v is not None]
    low = min(values, default=0.0) if y_min is None else y_min
    high = max(values, default=1.0) if y_max is None else y_max
    if any(s.kind == "bars" for s in series):
        low = min(low, 0.0)
        high = high * 1.05 if y_max is None else high  # headroom, so the tallest column does not touch the top
    if high - low < 1e-9:
        low, high = (low - 0.5, high + 0.5) if low != 0 else (0.0, 1.0)
    ticks = nice_ticks(low, high, count=5, integer=integer)
    y_low, y_high = ticks[0], ticks[-1]
    x_first, x_last = (min(x), max(x)) if x else (0.0, 1.0)
    steps = sorted(b - a for a, b in itertools.pairwise(sorted(x)) if b > a)
    step = steps[len(steps) // 2] if steps else max(x_last - x_first, 1.0)
    has_bars = any(s.kind == "bars" for s in series)
    if has_bars:
        x_first, x_last = x_first - step / 2, x_last + step / 2
    span = (x_last - x_first) or 1.0

    def to_x(value: float) -> float:
        return left + (right - left) * ((value - x_first) / span) if len(x) > 1 or has_bars else (left + right) / 2

    def to_y(value: float) -> float:
        return bottom - (bottom - top) * ((value - y_low) / (y_high - y_low))

    parts = [_open(title, width, height, f"{len(x)} windows; {', '.join(s.name for s in series)}")]
    parts += legend
    parts += _y_axis(
        ticks, to_y=to_y, left=left - 6, right=right + 6, label=y_label, top=top, bottom=bottom, fmt=y_format
    )
    for tick_x, tick_label in x_ticks:
        px = _num(to_x(tick_x))
        parts.append(f'<line class="axis" x1="{px}" y1="{_num(bottom)}" x2="{px}" y2="{_num(bottom + 4)}"/>')
        parts.append(
            f'<text class="tick" x="{px}" y="{_num(bottom + 16)}" text-anchor="middle">{escape(tick_label)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{_num((left + right) / 2)}" y="{height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    bar_px = min((right - left) / 3, (right - left) * step / span * 0.8)
    bar_series = [s for s in series if s.kind == "bars"]
    for j, s in enumerate(bar_series):
        each = max(bar_px / len(bar_series), 1.0)
        for i, value in enumerate(s.values[: len(x)]):
            if value is None:
                continue
            y, base = to_y(max(value, y_low)), to_y(max(y_low, 0.0))
            tip = f"{point_labels[i]}: " if i < len(point_labels) else ""
            parts.append(
                f'<rect x="{_num(to_x(x[i]) - bar_px / 2 + j * each)}" y="{_num(min(y, base))}" '
                f'width="{_num(each)}" height="{_num(abs(base - y))}" fill="{s.color}">'
                f"<title>{escape(tip)}{escape(s.name)} {fmt_number(value)}</title></rect>"
            )
    for s in series:
        if s.kind == "bars":
            continue
        parts += _line(s, x, to_x=to_x, to_y=to_y, point_labels=point_labels)
    parts.append("</svg>")
    return "".join(parts)


def _line(
    s: Series,
    x: Sequence[float],
    *,
    to_x: Callable[[float], float],
    to_y: Callable[[float], float],
    point_labels: Sequence[str],
) -> list[str]:
    """A polyline per run of known values, and dots where the windows are few enough to tell apart."""
    parts: list[str] = []
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    run: list[str] = []
    points = list(zip(x, s.values, strict=False))
    for px, value in [*points, (0.0, None)]:
        if value is None:
            if len(run) > 1:
                parts.append(
                    f'<polyline fill="none" stroke="{s.color}" stroke-width="2"{dash} points="{" ".join(run)}"/>'
                )
            run = []
            continue
        run.append(f"{_num(to_x(px))},{_num(to_y(value))}")
    show_dots = len(points) <= 60
    for i, (px, value) in enumerate(points):
        isolated = (
            value is not None
            and (i == 0 or points[i - 1][1] is None)
            and (i == len(points) - 1 or points[i + 1][1] is None)
        )
        if value is None or not (show_dots or isolated):
            continue
        tip = f"{point_labels[i]}: " if i < len(point_labels) else ""
        parts.append(
            f'<circle cx="{_num(to_x(px))}" cy="{_num(to_y(value))}" r="2.6" fill="{s.color}">'
            f"<title>{escape(tip)}{escape(s.name)} {fmt_number(value)}</title></circle>"
        )
    return parts


@dataclass(frozen=True)
class CalibrationPoint:
    """One probability bin of a reliability curve."""

    label: str
    mean_predicted: float
    fraction_positive: float
    count: float | None


@dataclass(frozen=True)
class _UnitSquare:
    """A square plot of [0, 1] by [0, 1] (both axes probabilities or rates) and where it sits in the SVG."""

    left: float
    top: float
    side: float

    def x(self, value: float) -> float:
        return self.left + self.side * min(max(value, 0.0), 1.0)

    def y(self, value: float) -> float:
        return self.top + self.side - self.side * min(max(value, 0.0), 1.0)


def _unit_square(
    *,
    title: str,
    description: str,
    legend_items: Sequence[tuple[str, str, str, bool]],
    x_label: str,
    y_label: str,
    size: int,
) -> tuple[list[str], _UnitSquare]:
    """The opening, legend, grid and labelled axes of a square chart of two quantities in [0, 1]."""
    legend, legend_px = _legend(legend_items, size)
    left, top = MARGIN_LEFT, legend_px + 4
    side = size - MARGIN_LEFT - MARGIN_RIGHT
    right, bottom = left + side, top + side
    height = bottom + MARGIN_BOTTOM
    ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    square = _UnitSquare(left, top, side)
    parts = [_open(title, size, height, description)]
    parts += legend
    parts += _y_axis(
        ticks, to_y=square.y, left=left, right=right, label=y_label, top=top, bottom=bottom, fmt=fmt_number
    )
    for tick in ticks:
        px = _num(square.x(tick))
        parts.append(f'<line class="grid" x1="{px}" y1="{_num(top)}" x2="{px}" y2="{_num(bottom)}"/>')
        parts.append(
            f'<text class="tick" x="{px}" y="{_num(bottom + 16)}" text-anchor="middle">{fmt_number(tick)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{_num((left + right) / 2)}" y="{height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    return parts, square


def reliability_chart(
    *, title: str, points: Sequence[CalibrationPoint], color: str, diagonal_color: str, size: int = 320
) -> str:
    """Fraction positive against mean predicted probability, with the perfect-calibration diagonal.

    Dot area grows with the bin's count, so a wild point backed by three predictions reads as such.
    """
    parts, square = _unit_square(
        title=title,
        description=f"{len(points)} probability bins against the diagonal",
        legend_items=[("model", color, "line", False), ("perfectly calibrated", diagonal_color, "line", True)],
        x_label="mean predicted probability",
        y_label="fraction positive",
        size=size,
    )
    to_x, to_y = square.x, square.y
    parts.append(
        f'<line x1="{_num(to_x(0))}" y1="{_num(to_y(0))}" x2="{_num(to_x(1))}" y2="{_num(to_y(1))}" '
        f'stroke="{diagonal_color}" stroke-width="1.5" stroke-dasharray="5 3"/>'
    )
    ordered = sorted(points, key=lambda p: p.mean_predicted)
    if len(ordered) > 1:
        line = " ".join(f"{_num(to_x(p.mean_predicted))},{_num(to_y(p.fraction_positive))}" for p in ordered)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/>')
    largest = max((p.count or 0.0 for p in ordered), default=0.0)
    for p in ordered:
        radius = 3.0 + 4.0 * math.sqrt((p.count or 0.0) / largest) if largest > 0 else 3.5
        count = "" if p.count is None else f"{p.count:,.0f} predictions, "
        tip = (
            f"{p.label}: {count}mean predicted {fmt_number(p.mean_predicted)}, "
            f"fraction positive {fmt_number(p.fraction_positive)}"
        )
        parts.append(
            f'<circle cx="{_num(to_x(p.mean_predicted))}" cy="{_num(to_y(p.fraction_positive))}" '
            f'r="{_num(radius)}" fill="{color}" fill-opacity="0.75"><title>{escape(tip)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def precision_recall_chart(
    *,
    title: str,
    recall: Sequence[float],
    precision: Sequence[float],
    thresholds: Sequence[float],
    baseline: float | None,
    color: str,
    baseline_color: str,
    size: int = 320,
) -> str:
    """Precision against recall as steps (the area under them is average precision), with the precision a
    model guessing at random would have (the share of positives) as a dashed line.

    Points come ordered by rising threshold (falling recall), as the report stores them; each carries its
    threshold in a tooltip, which is what a reader picking an operating point wants.
    """
    items = [("model", color, "line", False)]
    if baseline is not None:
        items.append(("random guess (share of positives)", baseline_color, "line", True))
    parts, square = _unit_square(
        title=title,
        description=f"{len(recall)} points of the precision-recall curve",
        legend_items=items,
        x_label="recall",
        y_label="precision",
        size=size,
    )
    if baseline is not None:
        y = _num(square.y(baseline))
        parts.append(
            f'<line x1="{_num(square.x(0))}" y1="{y}" x2="{_num(square.x(1))}" y2="{y}" stroke="{baseline_color}" '
            'stroke-width="1.5" stroke-dasharray="5 3"/>'
        )
    # Steps as scikit-learn's display draws them: from recall 0 upwards, precision held until the next point.
    pairs = sorted(zip(recall, precision, strict=False), key=lambda p: p[0])
    steps: list[str] = []
    for i, (r, p) in enumerate(pairs):
        if i:
            steps.append(f"{_num(square.x(r))},{_num(square.y(pairs[i - 1][1]))}")
        steps.append(f"{_num(square.x(r))},{_num(square.y(p))}")
    if len(steps) > 1:
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(steps)}"/>')
    for r, p, t in zip(recall, precision, thresholds, strict=False):
        tip = f"threshold {fmt_number(t)}: precision {fmt_number(p)}, recall {fmt_number(r)}"
        parts.append(
            f'<circle cx="{_num(square.x(r))}" cy="{_num(square.y(p))}" r="2" fill="{color}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
