"""The monitoring report as one self-contained HTML file that opens offline in any browser.

Everything is inline: CSS in a `<style>`, plots as SVG drawn in Python, no scripts, fonts, images or
links to the network, so the file can be mailed, archived with an incident, or opened on a machine
with no internet. All report text is user data (feature and category names come from training
data) and goes through `html.escape`.

It renders the typed report (`shipyard.monitoring.report.MonitoringReport`); a report saved as JSON
renders after `MonitoringReport.from_dict`.

Each version's sections carry stable ids (`operational`, `drift`, `distributions`, `timeline`,
`performance`, `calibration`, `quality`, `fairness`). The newest version, listed first, gets the
bare ids so `report.html#drift` lands where a reader expects; older versions' ids end in the
version's slug (`drift-fraud-2`). Every section also has its name as a class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from shipyard.monitoring.drift_records import FeatureDrift, WindowDrift
from shipyard.monitoring.report import MonitoringReport, VersionReport
from shipyard.reporting.fields import (
    MISSING,
    drifted_first,
    errors_by_status,
    finite,
    fmt_count,
    fmt_ms,
    fmt_number,
    fmt_rate,
    fmt_time,
    other_scores,
    report_range,
    tested,
    unrouted_text,
)
from shipyard.reporting.joint_drift import label_drift_section, multivariate_section
from shipyard.reporting.labelled import calibration_section, fairness_section, performance_section
from shipyard.reporting.loss import loss_section
from shipyard.reporting.markup import (
    COUNT_COLOR,
    DRIFT_COLOR,
    LIVE_COLOR,
    REFERENCE_COLOR,
    REQUESTS_COLOR,
    cell,
    empty,
    figures,
    has,
    table,
    time_figure,
)
from shipyard.reporting.outliers import outlier_section
from shipyard.reporting.quality_html import quality_extras
from shipyard.reporting.svg import Series, grouped_bars
from shipyard.reporting.timeline import Timeline, build_timeline

MAX_HISTOGRAMS = 24  # per version; beyond this the drift table carries the figures, the file stays small

CSS = """
:root{color-scheme:light;--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bad:#c62828;--ok:#2e7d32;--warn:#b26a00}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1180px;padding:24px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:19px;margin:0;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
h3{font-size:15px;margin:22px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
.meta,.muted,.empty{color:var(--muted)}.empty{font-style:italic;margin:4px 0}
nav ul{list-style:none;padding:0;display:flex;gap:12px;flex-wrap:wrap}
article.version{margin-top:28px;padding:16px 20px;border:1px solid var(--line);border-radius:8px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
background:#eef1f4;color:var(--muted)}
.badge.bad{background:#fde7e7;color:var(--bad)}.badge.ok{background:#e6f4ea;color:var(--ok)}
dl.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:8px;margin:0}
dl.figures div{border:1px solid var(--line);border-radius:6px;padding:6px 10px}
dl.figures dt{font-size:12px;color:var(--muted)}dl.figures dd{margin:0;font-size:17px;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:4px 0}
th,td{text-align:left;padding:4px 12px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}tbody th{font-weight:600}
td.num,th.num{text-align:right}
tr.drifted th{border-left:3px solid var(--bad)}td.warn{color:var(--warn);font-weight:600}
.table-scroll{overflow-x:auto}ul.notes{margin:6px 0;padding-left:20px;color:var(--muted);font-size:13px}
figure.confusion{margin-top:12px}.note{display:block;font-size:12px;color:var(--muted)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(380px,100%),1fr));gap:14px}
figure{margin:0}figcaption{font-size:13px;font-weight:600;margin-bottom:2px}
svg.chart{max-width:100%;height:auto;display:block}
svg.chart text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#333}
svg.chart text.axis-label{fill:var(--muted)}
svg.chart .grid{stroke:#e6e9ec;stroke-width:1}svg.chart .axis{stroke:#8c959f;stroke-width:1}
footer{margin-top:28px;font-size:12px;color:var(--muted)}
@media print{article.version{break-inside:avoid-page;border:none;padding:0}}
"""


def render_html(report: MonitoringReport) -> str:
    """The whole report as one HTML document (UTF-8 text), safe to open offline."""
    endpoint = report.endpoint
    versions = report.versions
    slugs = _unique_slugs([v.version for v in versions])
    body = [
        "<header>",
        f"<h1>Monitoring report: {escape(endpoint)}</h1>",
        f'<p class="meta">Endpoint <strong>{escape(endpoint)}</strong> · {escape(report_range(report))} · '
        f"generated {escape(fmt_time(report.generated_at))}</p>",
        "</header>",
    ]
    unrouted = unrouted_text(report)
    if unrouted:
        body.insert(-1, f'<p class="unrouted">{escape(unrouted[0].upper() + unrouted[1:])}.</p>')
    if len(versions) > 1:
        links = "".join(
            f'<li><a href="#v-{slug}">{escape(v.version)}</a></li>' for v, slug in zip(versions, slugs, strict=True)
        )
        body.append(f'<nav aria-label="versions"><ul>{links}</ul></nav>')
    if not versions:
        body.append('<p class="empty">No model version served requests in this range.</p>')
    for i, (version, slug) in enumerate(zip(versions, slugs, strict=True)):
        body.append(_version(version, slug=slug, newest=i == 0, endpoint=endpoint))
    body.append(
        "<footer>Generated by Shipyard. This file is self-contained: it loads nothing from the network.</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Shipyard monitoring report: {escape(endpoint)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _unique_slugs(names: Sequence[str]) -> list[str]:
    slugs: list[str] = []
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "version"
        slug, n = base, 2
        while slug in slugs:
            slug, n = f"{base}-{n}", n + 1
        slugs.append(slug)
    return slugs


def _section(name: str, title: str, content: str, *, slug: str, newest: bool) -> str:
    anchor = name if newest else f"{name}-{slug}"
    return f'<section id="{anchor}" class="{name}"><h3>{escape(title)}</h3>{content}</section>'


def _version(version: VersionReport, *, slug: str, newest: bool, endpoint: str) -> str:
    name = version.version
    arms = "".join(f'<span class="badge">{escape(arm)}</span>' for arm in version.arms)
    drift = version.drift
    if drift is None:
        status = '<span class="badge">no reference profile</span>'
    elif drift.drifted:
        count = len(drift.drifted_features) or sum(1 for f in drift.features if f.drifted)
        status = f'<span class="badge bad">drift in {count} of {len(drift.features)} features</span>'
    else:
        status = '<span class="badge ok">no drift</span>'
    if drift is not None and drift.dataset_drifted and drift.drift_share is not None:
        share = f"{drift.drift_share:.0%} of features drifted, over {drift.drift_share_threshold:.0%}"
        status += f'<span class="badge bad" title="{escape(share)}">dataset drift</span>'
    timeline = build_timeline(version.timeline)
    sections = [
        ("operational", "Traffic and latency", _operational(version)),
        ("drift", "Drift", _drift(drift)),
        ("distributions", "Reference vs live distributions", _distributions(drift)),
        ("multivariate", "Multivariate drift", multivariate_section(drift)),
        ("label-drift", "Label drift", label_drift_section(version.label_drift)),
        ("timeline", "Drift over time", _timeline(timeline)),
        ("performance", "Performance", performance_section(version, timeline, endpoint)),
        ("calibration", "Calibration", calibration_section(version)),
        *(
            [("estimated-loss", "Estimated error (DLE)", loss_section(version.estimated_loss))]
            if version.estimated_loss is not None
            else []
        ),
        ("quality", "Data quality", _quality(version)),
        ("fairness", "Fairness", fairness_section(version)),
        ("outliers", "Outliers", outlier_section(version.outliers)),
    ]
    parts = [
        f'<article class="version" id="v-{slug}" aria-label="{escape(name)}">',
        f"<h2>{escape(name)} {arms} {status}</h2>",
        *(_section(key, title, content, slug=slug, newest=newest) for key, title, content in sections),
        "</article>",
    ]
    return "".join(parts)


def _operational(version: VersionReport) -> str:
    ops = version.operational
    latency = ops.latency_ms
    by_status = errors_by_status(ops.errors)
    rate = finite(ops.request_rate_per_s)
    # Shown only when some requests were not profiled: then drift and quality figures cover fewer rows.
    unprofiled = [("not profiled (buffer full)", fmt_count(ops.dropped))] if ops.dropped else []
    return figures(
        [
            ("requests", fmt_count(ops.requests)),
            ("rows", fmt_count(ops.rows)),
            ("request rate", MISSING if rate is None else f"{fmt_number(rate)}/s"),
            ("error rate", fmt_rate(finite(ops.error_rate))),
            ("errors by status", by_status or "none"),
            ("latency p50", fmt_ms(finite(latency.p50))),
            ("latency p95", fmt_ms(finite(latency.p95))),
            ("latency p99", fmt_ms(finite(latency.p99))),
            ("latency mean", fmt_ms(finite(latency.mean))),
            *unprofiled,
        ]
    )


def _drift_row(feature: FeatureDrift) -> str:
    drifted = feature.drifted
    note = feature.note or ""
    name = escape(feature.feature) + (f'<span class="note">{escape(note)}</span>' if note else "")
    badge = '<span class="badge bad">DRIFT</span>' if drifted else '<span class="badge ok">ok</span>'
    if not tested(feature):
        badge = '<span class="badge">not tested</span>'
    return (
        ('<tr class="drifted">' if drifted else "<tr>")
        + f'<th scope="row">{name}</th>'
        + cell(feature.kind)
        + cell(feature.test or MISSING)
        + cell(fmt_number(finite(feature.score)), numeric=True)
        + cell(fmt_number(finite(feature.threshold)), numeric=True)
        + cell(fmt_number(finite(feature.p_value)), numeric=True)
        + cell(fmt_count(feature.rows), numeric=True)
        + f"<td>{badge}</td>"
        + cell(other_scores(feature))
        + "</tr>"
    )


def _drift(drift: WindowDrift | None) -> str:
    if drift is None:
        return empty("No drift figures: this version has no reference profile (register it with training_data).")
    features = drifted_first(drift.features)
    headers = ["feature", "kind", "test", "score", "threshold", "p-value", "rows", "status", "other tests"]
    parts = []
    if features:
        rows = [_drift_row(f) for f in features]
        parts.append(table(headers, rows, numeric={3, 4, 5, 6}, css="drift-table"))
    else:
        parts.append(empty("No feature has live data in this range yet."))
    skipped = [f.feature for f in drift.features if f.test is None]
    if skipped:
        parts.append(empty(f"Not tested: {', '.join(skipped)} (the note under each name says why)."))
    prediction = drift.prediction
    if prediction is not None:
        verdict = "DRIFT" if prediction.drifted else "no drift"
        p_value = finite(prediction.p_value)
        details = [f"threshold {fmt_number(finite(prediction.threshold))}"]
        if p_value is not None:
            details.append(f"p-value {fmt_number(p_value)}")
        parts.append(
            f'<p class="prediction-drift">Predictions: {escape(prediction.test or "test")} '
            f"{escape(fmt_number(finite(prediction.score)))} ({escape(', '.join(details))}): "
            f"<strong>{verdict}</strong></p>"
        )
    return "".join(parts)


def _histogram(feature: FeatureDrift) -> str | None:
    bins = list(feature.bins)
    ref = [finite(v) for v in feature.reference_proportions]
    live = [finite(v) for v in feature.live_proportions]
    if not bins or not (any(v is not None for v in ref) or any(v is not None for v in live)):
        return None
    # Live data may carry more bins than the reference names (a service adding "unseen"); show them too.
    bins += [f"bin {i + 1}" for i in range(len(bins), max(len(ref), len(live)))]
    name = feature.feature
    drifted = feature.drifted
    unit = "category" if feature.kind == "categorical" else "bin"
    chart = grouped_bars(
        title=f"{name}: reference vs live share of rows per {unit}",
        categories=bins,
        series=[Series("reference", ref, REFERENCE_COLOR, kind="bars"), Series("live", live, LIVE_COLOR, kind="bars")],
        y_label="share of rows",
        x_label=unit,
        y_format=_percent_tick,
        value_format=fmt_rate,
    )
    badge = ' <span class="badge bad">DRIFT</span>' if drifted else ""
    score = f"{feature.test or 'score'} {fmt_number(finite(feature.score))}"
    return (
        f'<figure class="histogram"><figcaption>{escape(name)}{badge} '
        f'<span class="muted">{escape(score)}</span></figcaption>{chart}</figure>'
    )


def _percent_tick(value: float) -> str:
    return f"{round(value * 100, 6):g}%"


def _distributions(drift: WindowDrift | None) -> str:
    if drift is None:
        return empty("No reference profile to compare live data with.")
    features = drifted_first(drift.features)
    prediction = drift.prediction
    candidates = ([prediction] if prediction is not None else []) + features
    figures = [f for f in (_histogram(c) for c in candidates[:MAX_HISTOGRAMS]) if f]
    if not figures:
        return empty("No binned reference or live data to plot yet.")
    rest = len(candidates) - MAX_HISTOGRAMS
    more = empty(f"{rest} more features not plotted; the drift table lists them all.") if rest > 0 else ""
    return f'<div class="charts">{"".join(figures)}</div>{more}'


def _timeline(timeline: Timeline) -> str:
    if not timeline.points:
        return empty("No stored windows in this range yet.")
    points = timeline.points
    figures = []
    score = [p.drift_max_score for p in points]
    count = [p.drifted_count for p in points]
    requests = [p.requests for p in points]
    if has(score):
        figures.append(
            time_figure(
                "Worst feature's drift per window (1 = at its threshold)",
                timeline,
                [Series("drift / threshold", score, DRIFT_COLOR)],
                y_label="drift / threshold",
                y_min=0.0,
            )
        )
    if has(count):
        figures.append(
            time_figure(
                "Drifted features per window",
                timeline,
                [Series("drifted features", count, COUNT_COLOR, kind="bars")],
                y_label="features",
                y_min=0.0,
                integer=True,
            )
        )
    if any(r for r in requests):  # all-zero traffic is said in words below, not drawn as an empty chart
        figures.append(
            time_figure(
                "Requests per window",
                timeline,
                [Series("requests", requests, REQUESTS_COLOR, kind="bars")],
                y_label="requests",
                y_min=0.0,
                integer=True,
            )
        )
    if not figures:
        return empty("The stored windows carry no drift figures and no requests yet.")
    merged = ""
    if timeline.windows > len(points):
        merged = empty(f"{timeline.windows} windows merged into {len(points)} points to keep this file small.")
    return f'<div class="charts">{"".join(figures)}</div>{merged}'


def _quality(version: VersionReport) -> str:
    quality = version.quality
    parts = [f"<p>Rejected requests (broke the signature): <strong>{fmt_count(quality.rejected_requests)}</strong></p>"]
    if quality.unknown_features:
        unknown = ", ".join(quality.unknown_features)
        parts.append(f"<p>Features sent that the signature does not know: {escape(unknown)}</p>")
    rows = []
    for f in quality.features:
        missing, ref_missing = finite(f.missing_rate), finite(f.reference_missing_rate)
        out, unseen, violations = f.out_of_range, f.unseen, f.type_violations
        rows.append(
            f'<tr><th scope="row">{escape(f.feature)}</th>'
            + cell(fmt_rate(missing), numeric=True, warn=missing is not None and missing > (ref_missing or 0) + 0.01)
            + cell(fmt_rate(ref_missing), numeric=True)
            + cell(f"{fmt_count(out)} ({fmt_rate(finite(f.out_of_range_rate))})", numeric=True, warn=bool(out))
            + cell(f"{fmt_count(unseen)} ({fmt_rate(finite(f.unseen_rate))})", numeric=True, warn=bool(unseen))
            + cell(fmt_count(violations), numeric=True, warn=bool(violations))
            + "</tr>"
        )
    headers = ["feature", "missing", "missing in reference", "out of range", "unseen categories", "type violations"]
    if rows:
        parts.append(table(headers, rows, numeric={1, 2, 3, 4, 5}, css="quality-table"))
    else:
        parts.append(empty("No per-feature quality figures yet."))
    parts.append(quality_extras(quality))
    return "".join(parts)


def drift_sections(drift: WindowDrift | None) -> tuple[str, str]:
    """The drift table and the reference-against-live histograms, for the offline comparison's report."""
    return _drift(drift), _distributions(drift)
