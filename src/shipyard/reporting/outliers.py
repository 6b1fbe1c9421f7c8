"""The outlier section of the reports: one terminal line, and an HTML section with the score / threshold bars.

Both say plainly when a version has no outlier model and why, rather than showing a rate of zero.
"""

from __future__ import annotations

from html import escape

from shipyard.monitoring.outlier_counts import RATIO_EDGES, OutlierReport
from shipyard.reporting.fields import finite, fmt_count, fmt_number, fmt_rate
from shipyard.reporting.markup import COUNT_COLOR, cell, empty, figures, table


def outlier_line(report: OutlierReport | None) -> str:
    """``shipyard monitor``'s line: rows above the threshold of those scored, against the expected share."""
    if report is None:
        return "no outlier figures in this report (written before outlier scoring)"
    if not report.available:
        return f"no outlier scores: {report.note}"
    if not report.rows_scored:
        return f"no rows scored yet ({_method(report)}, threshold {fmt_number(finite(report.threshold))})"
    return (
        f"{fmt_count(report.rows_above)} of {fmt_count(report.rows_scored)} rows above the threshold "
        f"({fmt_rate(finite(report.rate))}; {fmt_rate(finite(report.expected_rate))} expected), {_method(report)}, "
        f"threshold {fmt_number(finite(report.threshold))}"
    )


def outlier_section(report: OutlierReport | None) -> str:
    """The HTML section: headline figures, then how many rows fell in each score / threshold band."""
    if report is None:
        return empty("This report was written before outlier scoring.")
    if not report.available:
        return empty(f"Outlier scoring {report.note or 'unavailable'}.")
    tiles = figures(
        [
            ("method", _method(report)),
            ("threshold", fmt_number(finite(report.threshold))),
            ("rows scored", fmt_count(report.rows_scored)),
            ("rows above threshold", fmt_count(report.rows_above)),
            ("outlier rate", fmt_rate(finite(report.rate))),
            ("expected (training)", fmt_rate(finite(report.expected_rate))),
        ]
    )
    if not report.rows_scored:
        return tiles + empty("No rows scored in this range yet.")
    total = sum(report.histogram) or 1
    rows = []
    lower = "0"
    for edge, count in zip((*RATIO_EDGES, None), report.histogram, strict=True):
        band = f"{lower} to {edge:g}" if edge is not None else f"over {lower}"
        above = edge is None or edge > 1.0
        width = f"{100 * count / total:.1f}%"
        bar = f'<span style="display:inline-block;height:0.8em;background:{COUNT_COLOR};width:{width}"></span>'
        rows.append(
            f'<tr><th scope="row">{escape(band)}</th>'
            + cell(fmt_count(count), numeric=True, warn=above and count > 0)
            + cell(fmt_rate(count / total), numeric=True)
            + f"<td>{bar}</td></tr>"
        )
        lower = f"{edge:g}" if edge is not None else lower
    return tiles + table(["score / threshold", "rows", "share", ""], rows, numeric={1, 2}, css="outlier-table")


def _method(report: OutlierReport) -> str:
    return (report.method or "unknown").replace("_", " ")
