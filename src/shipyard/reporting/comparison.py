"""The offline comparison as what ``shipyard.compare`` returns: the typed report, its JSON, its HTML file.

The HTML reuses the live report's sections (drift table, reference-against-current histograms, data quality,
performance) and style, so a batch user reads the same page a serving user does; what only an offline
comparison has (columns that differ, the domain classifier) gets its own section.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.offline_records import ComparisonReport
from shipyard.monitoring.report import DataQuality, Performance
from shipyard.reporting.fields import fmt_count, fmt_number, fmt_time
from shipyard.reporting.html import CSS, drift_sections
from shipyard.reporting.labelled import performance_figures
from shipyard.reporting.markup import empty, figures
from shipyard.reporting.quality_html import quality_extras

if TYPE_CHECKING:
    from shipyard.monitoring.drift_records import WindowDrift
    from shipyard.monitoring.offline_records import SchemaChanges


@dataclass(frozen=True, slots=True)
class Comparison:
    """One dataset compared with another (or with a version's reference profile): the typed ``report``,
    with its sections at hand, ``to_dict()`` for JSON and ``save_html(path)`` for a self-contained page."""

    report: ComparisonReport

    @property
    def drift(self) -> WindowDrift:
        return self.report.drift

    @property
    def quality(self) -> DataQuality:
        return self.report.quality

    @property
    def performance(self) -> Performance | None:
        return self.report.performance

    @property
    def schema(self) -> SchemaChanges:
        return self.report.schema

    @property
    def multivariate(self) -> Any:
        """The domain-classifier result (``auc``, ``threshold``, ``drifted``), None when it did not run."""
        return self.report.multivariate

    def summary(self) -> str:
        """One line: the verdict, drifted features, duplicates and column changes."""
        return self.report.summary()

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict()

    def to_html(self) -> str:
        return render_comparison_html(self.report)

    def save_html(self, path: str | os.PathLike[str]) -> Path:
        """Write the HTML page (through a temporary file, so a failed write leaves no half a page)."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(self.to_html(), encoding="utf-8")
            temporary.replace(target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise InvalidArgumentError(f"cannot write the report to {target}: {exc.strerror or exc}") from exc
        return target


def _section(name: str, title: str, content: str) -> str:
    return f'<section id="{name}" class="{name}"><h3>{escape(title)}</h3>{content}</section>'


def _columns(report: ComparisonReport) -> str:
    lines = report.schema.lines()
    parts = [
        figures(
            [
                ("reference rows", fmt_count(report.reference.rows)),
                ("current rows", fmt_count(report.current.rows)),
                ("reference columns", fmt_count(len(report.reference.columns))),
                ("current columns", fmt_count(len(report.current.columns))),
            ]
        )
    ]
    if lines:
        items = "".join(f"<li>{escape(line)}</li>" for line in lines)
        parts.append(
            f'<ul class="schema">{items}</ul><p class="muted">Only shared columns of one kind are compared.</p>'
        )
    else:
        parts.append(empty("Both sides have the same columns, of the same kinds."))
    if report.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>")
    return "".join(parts)


def _multivariate(report: ComparisonReport) -> str:
    result = report.multivariate
    if result is None:
        return empty(f"Domain classifier not run: {report.multivariate_note or 'no rows to compare'}.")
    if result.auc is None:
        return empty(f"Domain classifier: not computed ({result.note or 'no reason given'}).")
    verdict = "DRIFT" if result.drifted else "no drift"
    return (
        f'<p class="domain-classifier">A classifier told current rows from reference rows with ROC AUC '
        f"<strong>{escape(fmt_number(result.auc))}</strong> (0.5: it cannot); the no-drift threshold from "
        f"{fmt_count(result.permutations)} permutations is {escape(fmt_number(result.threshold))}, "
        f"p-value {escape(fmt_number(result.p_value))}: <strong>{verdict}</strong>. "
        f"{fmt_count(result.reference_rows)} reference and {fmt_count(result.current_rows)} current rows sampled, "
        f"{result.folds}-fold cross-validation.</p>"
    )


def render_comparison_html(report: ComparisonReport) -> str:
    """The comparison as one HTML document that loads nothing from the network."""
    drift_table, histograms = drift_sections(report.drift)
    drift = report.drift
    badge = (
        '<span class="badge bad">dataset drift</span>'
        if drift.dataset_drifted
        else ('<span class="badge bad">drift</span>' if drift.drifted else '<span class="badge ok">no drift</span>')
    )
    performance = (
        performance_figures(report.performance)
        if report.performance is not None
        else empty(f"No performance figures: {report.performance_note or 'no target and prediction columns'}.")
    )
    quality = report.quality
    body = [
        "<header>",
        f"<h1>Comparison: {escape(report.current.name)} against {escape(report.reference.name)}</h1>",
        f'<p class="meta">{escape(report.summary())} · generated {escape(fmt_time(report.generated_at))}</p>',
        "</header>",
        '<article class="version" id="comparison">',
        f"<h2>{escape(report.current.name)} {badge}</h2>",
        _section("columns", "Rows and columns", _columns(report)),
        _section("drift", "Drift", drift_table),
        _section("distributions", "Reference vs current distributions", histograms),
        _section("multivariate", "Multivariate drift (domain classifier)", _multivariate(report)),
        _section("quality", "Data quality", quality_extras(quality, live="current") or empty("No figures.")),
        _section("performance", "Performance", performance),
        "</article>",
        "<footer>Generated by Shipyard. This file is self-contained: it loads nothing from the network.</footer>",
    ]
    title = f"Shipyard comparison: {report.current.name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
