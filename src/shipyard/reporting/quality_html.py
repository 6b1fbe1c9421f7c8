"""The data-quality figures beyond missing and out-of-range, as HTML: duplicates, constant features, summary
statistics live against the reference, and correlation changes. Shared by the live and the offline report."""

from __future__ import annotations

from html import escape

from shipyard.monitoring.correlations import CorrelationChanges
from shipyard.monitoring.quality_stats import FeatureSummary, SummaryStats
from shipyard.monitoring.report import DataQuality
from shipyard.reporting.fields import MISSING, finite, fmt_count, fmt_number, fmt_rate
from shipyard.reporting.markup import cell, empty, table


def quality_tail(quality: DataQuality) -> str:
    """The newer quality figures as the end of the terminal's quality line (empty when there are none)."""
    parts = []
    if quality.duplicates is not None:
        parts.append(f"{fmt_count(quality.duplicates.duplicates)} duplicate rows")
    if quality.constant_features:
        parts.append(f"constant: {', '.join(quality.constant_features)}")
    changes = quality.correlations
    if changes is not None and changes.changed:
        pairs = ", ".join(
            f"{c.a}~{c.b} {fmt_number(finite(c.reference_r))}→{fmt_number(finite(c.live_r))}"
            for c in changes.changed[:3]
        )
        parts.append(f"correlation changed: {pairs}")
    return "".join(f" · {p}" for p in parts)


def quality_extras(quality: DataQuality, *, live: str = "live") -> str:
    """Duplicates and constant features as lines, then the summary and correlation tables."""
    parts = []
    duplicates = quality.duplicates
    if duplicates is not None:
        reference = (
            f"; reference {fmt_count(duplicates.reference_duplicates)} of {fmt_count(duplicates.reference_rows)} "
            f"({fmt_rate(finite(duplicates.reference_rate))})"
            if duplicates.reference_rate is not None
            else ""
        )
        parts.append(
            f'<p class="duplicates">Duplicate rows: <strong>{fmt_count(duplicates.duplicates)}</strong> of '
            f"{fmt_count(duplicates.rows)} ({escape(fmt_rate(finite(duplicates.rate)))}){escape(reference)}"
            f'<span class="note">{escape(duplicates.method)}</span></p>'
        )
    if quality.constant_features:
        parts.append(
            f'<p class="constant">Constant features ({escape(live)} data holds one value): '
            f"<strong>{escape(', '.join(quality.constant_features))}</strong></p>"
        )
    if quality.summaries:
        parts.append(_summaries(quality, live))
    if quality.correlations is not None:
        parts.append(_correlations(quality.correlations, live))
    return "".join(parts)


def _numbers(stats: SummaryStats | None) -> list[str]:
    if stats is None:
        return [MISSING] * 7
    q = stats.quantiles
    return [
        fmt_number(finite(stats.mean)),
        fmt_number(finite(stats.sd)),
        fmt_number(finite(stats.min)),
        fmt_number(finite(q.get("p25"))),
        fmt_number(finite(q.get("p50"))),
        fmt_number(finite(q.get("p75"))),
        fmt_number(finite(stats.max)),
    ]


def _side_row(name: str, side: str, stats: SummaryStats | None, note: str | None) -> str:
    label = f'<th scope="row">{escape(name)}' + (f'<span class="note">{escape(note)}</span>' if note else "") + "</th>"
    count = fmt_count(stats.count) if stats is not None else MISSING
    missing = fmt_rate(finite(stats.missing_rate)) if stats is not None else MISSING
    return (
        f"<tr>{label if side != 'reference' else '<th></th>'}"
        + cell(side)
        + cell(count, numeric=True)
        + cell(missing, numeric=True)
        + "".join(cell(v, numeric=True) for v in _numbers(stats))
        + "</tr>"
    )


def _summaries(quality: DataQuality, live: str) -> str:
    numeric = [s for s in quality.summaries if s.kind == "numeric"]
    categorical = [s for s in quality.summaries if s.kind != "numeric"]
    parts = []
    if numeric:
        rows = []
        for summary in numeric:
            rows.append(_side_row(summary.feature, live, summary.live, summary.note))
            rows.append(_side_row(summary.feature, "reference", summary.reference, None))
        headers = ["feature", "side", "count", "missing", "mean", "sd", "min", "p25", "median", "p75", "max"]
        parts.append(
            '<h4 class="sub">Summary statistics</h4>'
            + table(headers, rows, numeric=set(range(2, 11)), css="summary-table")
            + f'<p class="note">Quantiles {escape(quality.quantile_method)}.</p>'
        )
    if categorical:
        parts.append(_categories(categorical, live))
    return "".join(parts)


def _categories(summaries: list[FeatureSummary], live: str) -> str:
    rows = []
    for s in summaries:
        for side, stats in ((live, s.live), ("reference", s.reference)):
            top = f"{stats.top} ({fmt_rate(finite(stats.top_share))})" if stats is not None and stats.top else MISSING
            rows.append(
                f'<tr><th scope="row">{escape(s.feature) if side == live else ""}</th>'
                + cell(side)
                + cell(fmt_count(stats.count) if stats else MISSING, numeric=True)
                + cell(fmt_rate(finite(stats.missing_rate)) if stats else MISSING, numeric=True)
                + cell(fmt_count(stats.distinct) if stats else MISSING, numeric=True)
                + cell(top)
                + "</tr>"
            )
    headers = ["feature", "side", "count", "missing", "distinct", "most frequent"]
    return table(headers, rows, numeric={2, 3, 4}, css="category-summary-table")


def _correlations(changes: CorrelationChanges, live: str) -> str:
    intro = (
        f'<h4 class="sub">Correlation changes</h4><p>Pearson r between {len(changes.features)} tracked numeric '
        f"features ({escape(', '.join(changes.features))}): {len(changes.changed)} of {changes.pairs} pairs "
        f"changed by more than {fmt_number(changes.threshold)} ({fmt_count(changes.live_rows)} {escape(live)} rows, "
        f"{fmt_count(changes.reference_rows)} reference rows).</p>"
    )
    note = empty(changes.note) if changes.note else ""
    if not changes.changed:
        return intro + note
    rows = [
        f'<tr><th scope="row">{escape(c.a)} ~ {escape(c.b)}</th>'
        + cell(fmt_number(finite(c.reference_r)), numeric=True)
        + cell(fmt_number(finite(c.live_r)), numeric=True)
        + cell(fmt_number(finite(c.change)), numeric=True, warn=True)
        + "</tr>"
        for c in changes.changed
    ]
    headers = ["pair", "reference r", f"{live} r", "change"]
    return intro + table(headers, rows, numeric={1, 2, 3}, css="correlation-table") + note
