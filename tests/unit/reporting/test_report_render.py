"""The monitoring report renderers: offline HTML and the Rich terminal view, on full and bare reports."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from rich.console import Console

from shipyard.monitoring.report import LatencySummary, MonitoringReport, TimelineWindow, VersionReport
from shipyard.reporting import render_html, render_terminal, summary_lines
from shipyard.reporting.svg import nice_ticks
from tests.report_samples import START, bare_report, full_report, numeric_feature

XSS = "<script>alert(1)</script>"
VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "embed", "source", "track", "wbr"}
SECTIONS = ["operational", "drift", "distributions", "timeline", "performance", "calibration", "quality", "fairness"]


class Page(HTMLParser):
    """What the tests look at in a rendered page, plus unbalanced tags as errors."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.svgs: list[dict[str, Any]] = []
        self.drift_rows: list[list[str]] = []
        self.text: list[str] = []
        self._in_drift_body = False
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)

    def _record(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        if tag == "svg":
            self.svgs.append({"attrs": attributes, "title": None})
        if tag == "title" and self.stack and self.stack[-1] == "svg":
            self.svgs[-1]["title"] = ""
        if tag == "table" and "drift-table" in (attributes.get("class") or ""):
            self._in_drift_body = True
        if tag == "tr" and self._in_drift_body and "thead" not in self.stack:
            self.drift_rows.append([])

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "table":
            self._in_drift_body = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack and self.stack[-1] == "title" and len(self.stack) > 1 and self.stack[-2] == "svg":
            self.svgs[-1]["title"] += data
        if self._in_drift_body and self.drift_rows and "tbody" in self.stack:
            self.drift_rows[-1].append(data)


def parse(source: str) -> Page:
    page = Page(source)
    assert page.errors == []
    assert page.stack == []
    return page


def test_full_report_html_parses_and_has_every_section() -> None:
    page = parse(render_html(full_report()))
    for name in SECTIONS:
        assert name in page.ids
        assert f"{name}-fraud-2" in page.ids  # the older version's sections have their own anchors
    assert len(page.ids) == len(set(page.ids))
    assert "Monitoring report: fraud" in "".join(page.text)


def test_html_loads_nothing_from_the_network() -> None:
    source = render_html(full_report())
    page = parse(source)
    assert "http://" not in source
    assert "https://" not in source
    for tag, attrs in page.tags:
        assert tag not in {"script", "link", "img", "iframe", "object", "embed"}
        for name in ("src", "href", "xlink:href", "action", "srcset"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), f"<{tag} {name}={value!r}>"
    assert "@import" not in source
    assert "url(" not in source


def test_drifted_features_are_listed_before_undrifted_ones() -> None:
    page = parse(render_html(full_report()))
    first_version = page.drift_rows[:4]
    names = [cells[0] for cells in first_version]
    # The sample shuffles the features, so this order is the renderer's own doing.
    assert names[:2] == ["tenure_months", "amount"]
    assert set(names[2:]) == {"country", "age"}
    assert all("DRIFT" in cells for cells in first_version[:2])
    assert not any("DRIFT" in cells for cells in first_version[2:])


def _with_first_version(report: MonitoringReport, version: VersionReport) -> MonitoringReport:
    return replace(report, versions=(version, *report.versions[1:]))


def test_feature_category_and_version_names_are_escaped() -> None:
    report = full_report(extra_feature=XSS)
    version = report.versions[0]
    assert version.drift is not None
    first, *rest = version.drift.features
    hostile = replace(first, bins=('"><img src=x onerror=alert(3)>', *first.bins[1:]))
    drift = replace(version.drift, features=(hostile, *rest))
    report = _with_first_version(report, replace(version, version='x" onmouseover="alert(2)', drift=drift))
    source = render_html(report)
    page = parse(source)
    assert "<script>" not in source
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in source
    assert all(tag not in {"script", "img"} for tag, _ in page.tags)
    assert all("onmouseover" not in attrs and "onerror" not in attrs for _, attrs in page.tags)
    assert any(XSS in cells for cells in page.drift_rows)  # still shown, as text


def test_every_plot_is_an_accessible_svg() -> None:
    page = parse(render_html(full_report()))
    labels = [svg["attrs"].get("aria-label") or "" for svg in page.svgs]
    assert len(page.svgs) >= 10
    for svg, label in zip(page.svgs, labels, strict=True):
        assert svg["attrs"].get("role") == "img"
        assert label
        assert svg["title"] == label
    assert any(label.startswith("tenure_months: reference vs live") for label in labels)
    assert any(label.startswith("Reliability curve") for label in labels)
    assert any(label == "Worst feature's drift per window (1 = at its threshold)" for label in labels)
    assert any(label == "Performance per window" for label in labels)


def test_html_shows_the_figures() -> None:
    text = " ".join(parse(render_html(full_report())).text)
    for figure in ("1,200", "0.25%", "7.9 ms", "0.93", "0.97", "CBPE", "0.04", "gender", "ECE 0.03", "MAE", "0.81"):
        assert figure in text
    assert "3 requests refused before reaching a version (400: 3)" in text
    assert "not profiled (buffer full)" in text
    assert "does not know: colour" in text


def test_notes_confusion_matrix_and_untested_features_render() -> None:
    page = parse(render_html(full_report()))
    text = " ".join(page.text)
    labels = [svg["attrs"].get("aria-label") or "" for svg in page.svgs]
    assert "Reliability curve (ECE 0.03)" in labels
    assert "no row was predicted positive" in text  # why a figure is what it is
    assert "Confusion matrix" in text
    assert "group M has no negatives" in text
    assert "0.84" in text  # the M group's true positive rate, spelt out
    assert "0.137" in text  # the regression's bias (mean error)
    untested = [cells for cells in page.drift_rows if cells and cells[0] == "device"]
    assert untested and "not tested" in untested[0]
    assert "no reference profile for this feature" in text
    assert "Not tested: device" in text
    assert "untested" in _terminal(full_report())


def test_bare_report_says_what_is_missing_instead_of_failing() -> None:
    page = parse(render_html(bare_report()))
    text = " ".join(page.text)
    for name in SECTIONS:
        assert name in page.ids
    assert "No labels yet" in text
    assert "no reference profile" in text
    assert "No fairness figures" in text
    assert "No calibration curve yet" in text
    assert "No stored windows" in text  # the version that never served
    # The quiet window of the other: no drift score without a reference, and no requests to draw.
    labels = [svg["attrs"].get("aria-label") for svg in page.svgs]
    assert "Worst feature's drift per window (1 = at its threshold)" not in labels
    assert "Requests per window" not in labels


def test_undefined_figures_render_as_dashes_never_as_nan() -> None:
    """An estimate, a latency or a test statistic can be NaN or infinite: the reader sees a dash."""
    report = full_report()
    version = report.versions[0]
    assert version.drift is not None and version.estimated is not None
    first, *rest = version.drift.features
    undefined_stats = tuple(replace(s, score=math.nan) for s in first.stats)
    drift = replace(version.drift, features=(replace(first, stats=undefined_stats), *rest))
    operational = replace(
        version.operational, request_rate_per_s=math.nan, latency_ms=LatencySummary(p50=math.inf, p99=math.nan)
    )
    estimated = replace(version.estimated, accuracy=math.nan)
    timeline = tuple(replace(w, estimated_accuracy=math.inf) for w in version.timeline)
    report = _with_first_version(
        report, replace(version, drift=drift, operational=operational, estimated=estimated, timeline=timeline)
    )
    source = render_html(report)
    parse(source)
    assert not re.search(r"\b(nan|inf)\b", source, flags=re.IGNORECASE)
    terminal = _terminal(report)
    assert not re.search(r"\b(nan|inf)\b", terminal, flags=re.IGNORECASE)
    assert "CBPE accuracy \N{EN DASH}" in terminal
    assert not any(re.search(r"\b(nan|inf)\b", line, flags=re.IGNORECASE) for line in summary_lines(report))


def test_long_timelines_are_merged_to_keep_the_file_small() -> None:
    report = full_report()
    week = []
    for i in range(7 * 24 * 12):
        start = START + timedelta(minutes=5 * i)
        week.append(
            TimelineWindow(
                start=start,
                end=start + timedelta(minutes=5),
                requests=100,
                error_rate=0.0,
                latency_p99_ms=5.0,
                drift_max_score=0.1,
                drifted_features=(),
                accuracy=0.9,
                estimated_accuracy=0.9,
                reward_rate=0.5,
            )
        )
    source = render_html(_with_first_version(report, replace(report.versions[0], timeline=tuple(week))))
    parse(source)
    assert "2016 windows merged into" in source
    assert len(source) < 400_000


def test_histograms_are_capped_per_version() -> None:
    report = full_report()
    version = report.versions[0]
    assert version.drift is not None
    features = tuple(numeric_feature(f"f{i}", shift=0.1, score=0.01, drifted=False) for i in range(60))
    version = replace(version, drift=replace(version.drift, features=features))
    source = render_html(replace(report, versions=(version,)))
    histograms = [svg for svg in parse(source).svgs if "reference vs live" in (svg["attrs"].get("aria-label") or "")]
    assert len(histograms) == 24
    assert "37 more features not plotted" in source  # 60 features and the prediction, 24 plotted


def _terminal(report: MonitoringReport, *, width: int = 100) -> str:
    console = Console(record=True, width=width, color_system=None)
    render_terminal(report, console)
    return console.export_text()


def test_terminal_lists_drifted_features_first_and_shows_the_figures() -> None:
    text = _terminal(full_report())
    first_version = text.split("fraud:2")[0]
    assert first_version.index("tenure_months") < first_version.index("country")
    assert first_version.index("amount") < first_version.index("age")
    drift_lines = [line for line in first_version.splitlines() if "DRIFT" in line]
    assert [line.split()[1] for line in drift_lines] == ["tenure_months", "amount"]
    for figure in (
        "1,200 requests",
        "error rate 0.25%",
        "p99 7.9 ms",
        "accuracy 0.93",
        "ROC AUC 0.97",
        "reward 0.61 [0.56, 0.66]",
        "CBPE accuracy 0.91 vs realised 0.93",
        "demographic parity difference 0.04",
        "MAE 1.2",
        "3 requests refused before reaching a version (400: 3)",
        "5 not profiled (monitoring buffer full)",
        "unknown features sent: colour",
    ):
        assert figure in " ".join(text.split()), figure


def test_terminal_fits_a_narrow_console() -> None:
    text = _terminal(full_report(extra_feature="a_rather_long_feature_name_from_a_warehouse"), width=40)
    assert all(len(line) <= 40 for line in text.splitlines())
    assert "DRIFT" in text


def test_terminal_copes_with_every_section_missing() -> None:
    text = _terminal(bare_report())
    assert "no labels yet" in text
    assert "no reference profile" in text
    assert "no label-free estimate" in text
    assert "no feature has live data in this range yet" in text
    assert "0 requests · error rate \N{EN DASH}" in text
    nobody = replace(bare_report(), versions=())
    assert _terminal(nobody).count("no model version served requests") == 1


def test_terminal_escapes_rich_markup_in_names() -> None:
    report = full_report(extra_feature="[bold red]x[/]")
    assert "[bold red]x[/]" in _terminal(report, width=160)


def test_summary_lines_name_the_drifted_features() -> None:
    lines = summary_lines(full_report())
    assert lines[0].startswith("fraud: 2026-11-21 09:00")
    assert "  drift: 2 of 5 features drifted: tenure_months, amount · predictions js 0.08 (no drift)" in lines
    assert "  performance: no labels yet" in summary_lines(bare_report())


def test_the_dataset_verdict_from_the_drift_share_is_shown_beside_the_features() -> None:
    report = full_report()
    newest = report.versions[0]
    assert newest.drift is not None
    shared = replace(newest.drift, drift_share=0.6, drift_share_threshold=0.5, dataset_drifted=True)
    report = replace(report, versions=(replace(newest, drift=shared), *report.versions[1:]))
    assert any("dataset drifted (share 60%, limit 50%)" in line for line in summary_lines(report))
    assert ">dataset drift</span>" in render_html(report)


@pytest.mark.parametrize(("low", "high"), [(0.0, 0.43), (0.0, 1.0), (0.02, 0.97), (0.0, 2.0), (-3.0, 7.5), (5.0, 5.0)])
def test_axis_ticks_are_round_and_cover_the_range(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low
    assert ticks[-1] >= high
    assert 2 <= len(ticks) <= 8
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    assert nice_ticks(0.0, 2.0, integer=True) == [0.0, 1.0, 2.0]


def _per_class_rows(page_source: str) -> list[list[str]]:
    body = page_source.split('class="per-class"', 2)[2].split("</tbody>")[0]  # the figure, then its table
    return [re.findall(r">([^<>]+)</t[hd]>", row) for row in body.split("<tr>")[2:]]


def test_html_shows_brier_score_per_class_figures_and_the_precision_recall_curve() -> None:
    source = render_html(full_report())
    page = parse(source)
    text = " ".join(page.text)
    for figure in ("average precision", "0.912", "Brier score", "0.061", "Per class"):
        assert figure in text, figure
    assert _per_class_rows(source)[:2] == [
        ["0", "0.959", "0.946", "0.952", "740", "730"],
        ["1", "0.852", "0.885", "0.868", "260", "270"],
    ]
    charts = [svg for svg in page.svgs if (svg["attrs"].get("aria-label") or "").startswith("Precision-recall")]
    assert [c["attrs"]["aria-label"] for c in charts] == ["Precision-recall curve for 1 (average precision 0.912)"]
    assert "21 of 980 points" in text  # the report keeps a thinned curve and says so
    assert "threshold 0.5: precision" in text  # each point's threshold, for picking an operating point
    assert "random guess (share of positives)" in text


def test_an_undefined_per_class_rate_is_a_dash_and_its_note_is_shown() -> None:
    report = full_report()
    version = report.versions[0]
    assert version.performance is not None and version.performance.classification is not None
    classification = version.performance.classification
    never = replace(classification.per_class[1], precision=None, predicted=0)
    note = "precision is undefined for classes never predicted: [1]"
    classification = replace(
        classification,
        per_class=(classification.per_class[0], never),
        precision_recall_curve=None,
        average_precision=None,
        notes={**classification.notes, "per_class": note},
    )
    report = _with_first_version(
        report, replace(version, performance=replace(version.performance, classification=classification))
    )
    source = render_html(report)
    text = " ".join(parse(source).text)
    assert _per_class_rows(source)[1][:2] == ["1", "\N{EN DASH}"]
    assert note in text
    assert "Precision-recall curve" not in text
    terminal = _terminal(report)
    assert not re.search(r"\b(nan|none)\b", terminal, flags=re.IGNORECASE)


def test_terminal_shows_the_new_figures_and_a_per_class_table() -> None:
    text = _terminal(full_report())
    flat = " ".join(text.split())
    assert "average precision 0.912" in flat and "Brier score 0.061" in flat
    rows = [line.split() for line in text.split("fraud:2")[0].splitlines()]
    assert rows[_row_index(rows, "precision")][1:] == ["precision", "recall", "F1", "support", "predicted"]
    assert ["0", "0.959", "0.946", "0.952", "740", "730"] in rows
    narrow = _terminal(full_report(), width=40)
    assert all(len(line) <= 40 for line in narrow.splitlines())


def _row_index(rows: list[list[str]], second: str) -> int:
    return next(i for i, row in enumerate(rows) if len(row) > 1 and row[1] == second)
