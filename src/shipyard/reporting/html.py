"""The monitoring report as one self-contained HTML file that opens offline in any browser.

Everything is inline: CSS in a `<style>`, plots as SVG drawn in Python, no scripts, fonts, images or
links to the network, so the file can be mailed, archived with an incident, or opened on a machine
with no internet. All report text is user data (feature and category names come from training
data) and goes through `html.escape`.

Each version's sections carry stable ids (`operational`, `drift`, `distributions`, `timeline`,
`performance`, `calibration`, `quality`, `fairness`). The newest version, listed first, gets the
bare ids so `report.html#drift` lands where a reader expects; older versions' ids end in the
version's slug (`drift-fraud-2`). Every section also has its name as a class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from shipyard.reporting.fields import (
    MISSING,
    drifted_first,
    fmt_count,
    fmt_ms,
    fmt_number,
    fmt_range,
    fmt_rate,
    fmt_time,
    items,
    number,
    numbers,
    other_scores,
    section,
    strings,
    text,
)
from shipyard.reporting.svg import CalibrationPoint, Series, grouped_bars, reliability_chart, time_chart
from shipyard.reporting.timeline import Timeline, build_timeline, time_ticks

MAX_HISTOGRAMS = 24  # per version; beyond this the drift table carries the figures, the file stays small

REFERENCE_COLOR = "#4c78a8"
LIVE_COLOR = "#f58518"
ACCURACY_COLOR = "#4c78a8"
ESTIMATE_COLOR = "#f58518"
REWARD_COLOR = "#54a24b"
DRIFT_COLOR = "#e45756"
COUNT_COLOR = "#b279a2"
REQUESTS_COLOR = "#8c8c8c"
DIAGONAL_COLOR = "#9a9a9a"

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
thead th{font-size:12px;color:var(--muted);font-weight:600}tbody th{font-weight:600}td.num,th.num{text-align:right}
tr.drifted th{border-left:3px solid var(--bad)}td.warn{color:var(--warn);font-weight:600}
.table-scroll{overflow-x:auto}.note{display:block;font-size:12px;color:var(--muted)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(380px,100%),1fr));gap:14px}
figure{margin:0}figcaption{font-size:13px;font-weight:600;margin-bottom:2px}
svg.chart{max-width:100%;height:auto;display:block}
svg.chart text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#333}
svg.chart text.axis-label{fill:var(--muted)}
svg.chart .grid{stroke:#e6e9ec;stroke-width:1}svg.chart .axis{stroke:#8c959f;stroke-width:1}
footer{margin-top:28px;font-size:12px;color:var(--muted)}
@media print{article.version{break-inside:avoid-page;border:none;padding:0}}
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (UTF-8 text), safe to open offline."""
    endpoint = text(report, "endpoint", "unknown endpoint")
    versions = items(report, "versions")
    window = section(report, "window")
    slugs = _unique_slugs([text(v, "version", f"version {i + 1}") for i, v in enumerate(versions)])
    body = [
        "<header>",
        f"<h1>Monitoring report: {escape(endpoint)}</h1>",
        f'<p class="meta">Endpoint <strong>{escape(endpoint)}</strong> · {escape(fmt_range(window))} · '
        f"generated {escape(fmt_time(report.get('generated_at')))}</p>",
        "</header>",
    ]
    if len(versions) > 1:
        links = "".join(
            f'<li><a href="#v-{slug}">{escape(text(v, "version", slug))}</a></li>'
            for v, slug in zip(versions, slugs, strict=True)
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


def _empty(message: str) -> str:
    return f'<p class="empty">{escape(message)}</p>'


def _figures(pairs: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in pairs)
    return f'<dl class="figures">{cells}</dl>'


def _table(headers: Sequence[str], rows: Sequence[str], *, numeric: set[int], css: str) -> str:
    num = ' class="num"'
    head = "".join(f'<th scope="col"{num if i in numeric else ""}>{escape(h)}</th>' for i, h in enumerate(headers))
    # The wrapper scrolls a wide table sideways on a phone instead of widening the whole page.
    table = f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="table-scroll">{table}</div>'


def _cell(value: str, *, numeric: bool = False, warn: bool = False) -> str:
    classes = " ".join(c for c, on in (("num", numeric), ("warn", warn)) if on)
    return f'<td class="{classes}">{escape(value)}</td>' if classes else f"<td>{escape(value)}</td>"


def _version(version: Mapping[str, Any], *, slug: str, newest: bool, endpoint: str) -> str:
    name = text(version, "version", slug)
    arms = "".join(f'<span class="badge">{escape(arm)}</span>' for arm in strings(version, "arms"))
    drift = section(version, "drift")
    if not drift:
        status = '<span class="badge">no reference profile</span>'
    elif drift.get("drifted") is True:
        count = len(strings(drift, "drifted_features")) or sum(
            1 for f in items(drift, "features") if f.get("drifted") is True
        )
        status = f'<span class="badge bad">drift in {count} of {len(items(drift, "features"))} features</span>'
    else:
        status = '<span class="badge ok">no drift</span>'
    timeline = build_timeline(items(version, "timeline"))
    parts = [
        f'<article class="version" id="v-{slug}" aria-label="{escape(name)}">',
        f"<h2>{escape(name)} {arms} {status}</h2>",
        _section("operational", "Traffic and latency", _operational(version), slug=slug, newest=newest),
        _section("drift", "Drift", _drift(drift), slug=slug, newest=newest),
        _section("distributions", "Reference vs live distributions", _distributions(drift), slug=slug, newest=newest),
        _section("timeline", "Drift over time", _timeline(timeline), slug=slug, newest=newest),
        _section("performance", "Performance", _performance(version, timeline, endpoint), slug=slug, newest=newest),
        _section("calibration", "Calibration", _calibration(version), slug=slug, newest=newest),
        _section("quality", "Data quality", _quality(version), slug=slug, newest=newest),
        _section("fairness", "Fairness", _fairness(version), slug=slug, newest=newest),
        "</article>",
    ]
    return "".join(parts)


def _operational(version: Mapping[str, Any]) -> str:
    ops = section(version, "operational")
    if not ops:
        return _empty("No traffic figures for this version in this range.")
    latency = section(ops, "latency_ms")
    errors = section(ops, "errors")
    by_status = ", ".join(f"{code}: {fmt_count(number(errors, code))}" for code in errors if number(errors, code))
    rate = number(ops, "request_rate_per_s")
    return _figures(
        [
            ("requests", fmt_count(number(ops, "requests"))),
            ("rows", fmt_count(number(ops, "rows"))),
            ("request rate", MISSING if rate is None else f"{fmt_number(rate)}/s"),
            ("error rate", fmt_rate(number(ops, "error_rate"))),
            ("errors by status", by_status or "none"),
            ("latency p50", fmt_ms(number(latency, "p50"))),
            ("latency p95", fmt_ms(number(latency, "p95"))),
            ("latency p99", fmt_ms(number(latency, "p99"))),
            ("latency mean", fmt_ms(number(latency, "mean"))),
        ]
    )


def _drift_row(feature: Mapping[str, Any]) -> str:
    drifted = feature.get("drifted") is True
    note = text(feature, "note")
    name = escape(text(feature, "feature", "?")) + (f'<span class="note">{escape(note)}</span>' if note else "")
    badge = '<span class="badge bad">DRIFT</span>' if drifted else '<span class="badge ok">ok</span>'
    if feature.get("drifted") is None:
        badge = '<span class="badge">not tested</span>'
    return (
        ('<tr class="drifted">' if drifted else "<tr>")
        + f'<th scope="row">{name}</th>'
        + _cell(text(feature, "kind", MISSING))
        + _cell(text(feature, "test", MISSING))
        + _cell(fmt_number(number(feature, "score")), numeric=True)
        + _cell(fmt_number(number(feature, "threshold")), numeric=True)
        + _cell(fmt_number(number(feature, "p_value")), numeric=True)
        + _cell(fmt_count(number(feature, "rows")), numeric=True)
        + f"<td>{badge}</td>"
        + _cell(other_scores(feature))
        + "</tr>"
    )


def _drift(drift: Mapping[str, Any]) -> str:
    if not drift:
        return _empty("No drift figures: this version has no reference profile (register it with training_data).")
    features = drifted_first(items(drift, "features"))
    headers = ["feature", "kind", "test", "score", "threshold", "p-value", "rows", "status", "other tests"]
    parts = []
    if features:
        rows = [_drift_row(f) for f in features]
        parts.append(_table(headers, rows, numeric={3, 4, 5, 6}, css="drift-table"))
    else:
        parts.append(_empty("No feature has live data in this range yet."))
    prediction = section(drift, "prediction")
    if prediction:
        verdict = "DRIFT" if prediction.get("drifted") is True else "no drift"
        details = [f"threshold {fmt_number(number(prediction, 'threshold'))}"]
        if number(prediction, "p_value") is not None:
            details.append(f"p-value {fmt_number(number(prediction, 'p_value'))}")
        parts.append(
            f'<p class="prediction-drift">Predictions: {escape(text(prediction, "test", "test"))} '
            f"{escape(fmt_number(number(prediction, 'score')))} ({escape(', '.join(details))}): "
            f"<strong>{verdict}</strong></p>"
        )
    return "".join(parts)


def _histogram(feature: Mapping[str, Any]) -> str | None:
    reference = section(feature, "reference")
    bins = strings(reference, "bins")
    ref = numbers(reference.get("proportions"))
    live = numbers(section(feature, "live").get("proportions"))
    if not bins or not (any(v is not None for v in ref) or any(v is not None for v in live)):
        return None
    # Live data may carry more bins than the reference names (a service adding "unseen"); show them too.
    bins += [f"bin {i + 1}" for i in range(len(bins), max(len(ref), len(live)))]
    name = text(feature, "feature", "?")
    drifted = feature.get("drifted") is True
    unit = "category" if feature.get("kind") == "categorical" else "bin"
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
    score = f"{text(feature, 'test', 'score')} {fmt_number(number(feature, 'score'))}"
    return (
        f'<figure class="histogram"><figcaption>{escape(name)}{badge} '
        f'<span class="muted">{escape(score)}</span></figcaption>{chart}</figure>'
    )


def _percent_tick(value: float) -> str:
    return f"{round(value * 100, 6):g}%"


def _distributions(drift: Mapping[str, Any]) -> str:
    if not drift:
        return _empty("No reference profile to compare live data with.")
    features = drifted_first(items(drift, "features"))
    prediction = section(drift, "prediction")
    candidates = ([prediction] if prediction else []) + features
    figures = [f for f in (_histogram(c) for c in candidates[:MAX_HISTOGRAMS]) if f]
    if not figures:
        return _empty("No binned reference or live data to plot yet.")
    rest = len(candidates) - MAX_HISTOGRAMS
    more = _empty(f"{rest} more features not plotted; the drift table lists them all.") if rest > 0 else ""
    return f'<div class="charts">{"".join(figures)}</div>{more}'


def _x_label(timeline: Timeline) -> str:
    if not timeline.timed:
        return "window"
    return "time (UTC)" if timeline.zone is not None and not timeline.zone.utcoffset(None) else "time"


def _time_figure(caption: str, timeline: Timeline, series: Sequence[Series], **options: Any) -> str:
    chart = time_chart(
        title=caption,
        x=[p.x for p in timeline.points],
        x_ticks=time_ticks(timeline),
        point_labels=[p.label for p in timeline.points],
        series=series,
        x_label=_x_label(timeline),
        **options,
    )
    return f"<figure><figcaption>{escape(caption)}</figcaption>{chart}</figure>"


def _has(values: Sequence[float | None]) -> bool:
    return any(v is not None for v in values)


def _timeline(timeline: Timeline) -> str:
    if not timeline.points:
        return _empty("No stored windows in this range yet.")
    points = timeline.points
    figures = []
    score = [p.drift_max_score for p in points]
    count = [p.drifted_count for p in points]
    requests = [p.requests for p in points]
    if _has(score):
        figures.append(
            _time_figure(
                "Largest drift score per window",
                timeline,
                [Series("max drift score", score, DRIFT_COLOR)],
                y_label="score",
                y_min=0.0,
            )
        )
    if _has(count):
        figures.append(
            _time_figure(
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
            _time_figure(
                "Requests per window",
                timeline,
                [Series("requests", requests, REQUESTS_COLOR, kind="bars")],
                y_label="requests",
                y_min=0.0,
                integer=True,
            )
        )
    if not figures:
        return _empty("The stored windows carry no drift figures and no requests yet.")
    merged = ""
    if timeline.windows > len(points):
        merged = _empty(f"{timeline.windows} windows merged into {len(points)} points to keep this file small.")
    return f'<div class="charts">{"".join(figures)}</div>{merged}'


def _performance_figures(performance: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = [("labelled", fmt_count(number(performance, "labelled")))]
    if performance.get("kind") == "regression" or number(performance, "mae") is not None:
        names = [("MAE", "mae"), ("RMSE", "rmse"), ("R²", "r2"), ("bias", "bias")]
    else:
        names = [
            ("accuracy", "accuracy"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("F1", "f1"),
            ("ROC AUC", "roc_auc"),
            ("log loss", "log_loss"),
        ]
    pairs += [(label, fmt_number(number(performance, key))) for label, key in names if key in performance]
    average = text(performance, "average")
    if average:
        pairs.append(("averaging", average))
    return pairs


def _performance(version: Mapping[str, Any], timeline: Timeline, endpoint: str) -> str:
    performance = section(version, "performance")
    estimated = section(version, "estimated")
    parts = []
    if performance:
        pairs = _performance_figures(performance)
        reward = section(performance, "reward")
        if reward:
            low, high = number(reward, "ci_low"), number(reward, "ci_high")
            pairs.append(("mean reward", fmt_number(number(reward, "mean"))))
            if low is not None and high is not None:
                pairs.append(("reward 95% interval", f"{fmt_number(low)}\N{EN DASH}{fmt_number(high)}"))
            pairs.append(("rewarded predictions", fmt_count(number(reward, "n"))))
        parts.append(_figures(pairs))
    else:
        parts.append(
            _empty(
                f"No labels yet: accuracy appears once labelled feedback arrives "
                f"(POST /v1/endpoints/{endpoint}/feedback)."
            )
        )
    if estimated:
        method = text(estimated, "method", "estimate").upper()
        parts.append(
            f'<p class="estimate">Estimated accuracy ({escape(method)}, without labels): '
            f"<strong>{escape(fmt_number(number(estimated, 'accuracy')))}</strong>; realised "
            f"{escape(fmt_number(number(estimated, 'realised_accuracy')))} (difference "
            f"{escape(fmt_number(number(estimated, 'difference')))})</p>"
        )
    series = [
        Series("accuracy", [p.accuracy for p in timeline.points], ACCURACY_COLOR),
        Series("estimated accuracy", [p.estimated_accuracy for p in timeline.points], ESTIMATE_COLOR, dashed=True),
        Series("reward rate", [p.reward_rate for p in timeline.points], REWARD_COLOR),
    ]
    series = [s for s in series if _has(s.values)]
    if series:
        figure = _time_figure("Performance per window", timeline, series, y_label="rate", y_min=0.0, y_max=1.0)
        parts.append(f'<div class="charts">{figure}</div>')
    else:
        parts.append(_empty("No accuracy, estimate or reward per window yet."))
    return "".join(parts)


def _calibration(version: Mapping[str, Any]) -> str:
    calibration = section(section(version, "performance"), "calibration")
    points = []
    for item in items(calibration, "curve"):
        predicted, positive = number(item, "mean_predicted"), number(item, "fraction_positive")
        if predicted is None or positive is None:
            continue  # an empty bin has no point to place
        label = f"{fmt_number(number(item, 'low'))}\N{EN DASH}{fmt_number(number(item, 'high'))}"
        points.append(CalibrationPoint(label, predicted, positive, number(item, "count")))
    if not points:
        return _empty("No calibration curve yet: it needs labelled predictions with probabilities.")
    caption = f"Reliability curve (ECE {fmt_number(number(calibration, 'ece'))})"
    method = text(calibration, "method")
    chart = reliability_chart(title=caption, points=points, color=ACCURACY_COLOR, diagonal_color=DIAGONAL_COLOR)
    detail = f'<span class="muted"> · {escape(method)}</span>' if method else ""
    return f'<figure class="calibration-chart"><figcaption>{escape(caption)}{detail}</figcaption>{chart}</figure>'


def _quality(version: Mapping[str, Any]) -> str:
    quality = section(version, "quality")
    if not quality:
        return _empty("No data-quality figures in this range.")
    parts = []
    rejected = number(quality, "rejected_requests")
    if rejected is not None:
        parts.append(f"<p>Rejected requests (broke the signature): <strong>{fmt_count(rejected)}</strong></p>")
    rows = []
    for f in items(quality, "features"):
        missing, ref_missing = number(f, "missing_rate"), number(f, "reference_missing_rate")
        out, unseen, violations = number(f, "out_of_range"), number(f, "unseen"), number(f, "type_violations")
        rows.append(
            f'<tr><th scope="row">{escape(text(f, "feature", "?"))}</th>'
            + _cell(fmt_rate(missing), numeric=True, warn=missing is not None and missing > (ref_missing or 0) + 0.01)
            + _cell(fmt_rate(ref_missing), numeric=True)
            + _cell(f"{fmt_count(out)} ({fmt_rate(number(f, 'out_of_range_rate'))})", numeric=True, warn=bool(out))
            + _cell(f"{fmt_count(unseen)} ({fmt_rate(number(f, 'unseen_rate'))})", numeric=True, warn=bool(unseen))
            + _cell(fmt_count(violations), numeric=True, warn=bool(violations))
            + "</tr>"
        )
    headers = ["feature", "missing", "missing in reference", "out of range", "unseen categories", "type violations"]
    if rows:
        parts.append(_table(headers, rows, numeric={1, 2, 3, 4, 5}, css="quality-table"))
    else:
        parts.append(_empty("No per-feature quality figures yet."))
    return "".join(parts)


def _fairness(version: Mapping[str, Any]) -> str:
    fairness = section(version, "fairness")
    if not fairness:
        return _empty("No fairness figures: no sensitive feature is configured, or no labels yet.")
    summary = (
        f"Sensitive feature <strong>{escape(text(fairness, 'feature', '?'))}</strong>, positive label "
        f"{escape(text(fairness, 'positive', MISSING))}: demographic parity difference "
        f"<strong>{fmt_number(number(fairness, 'demographic_parity_difference'))}</strong>, equalized odds "
        f"difference <strong>{fmt_number(number(fairness, 'equalized_odds_difference'))}</strong>"
    )
    rows = [
        f'<tr><th scope="row">{escape(text(g, "group", "?"))}</th>'
        + _cell(fmt_count(number(g, "count")), numeric=True)
        + _cell(fmt_rate(number(g, "selection_rate")), numeric=True)
        + _cell(fmt_number(number(g, "tpr")), numeric=True)
        + _cell(fmt_number(number(g, "fpr")), numeric=True)
        + "</tr>"
        for g in items(fairness, "groups")
    ]
    table = (
        _table(
            ["group", "count", "selection rate", "true positive rate", "false positive rate"],
            rows,
            numeric={1, 2, 3, 4},
            css="fairness-table",
        )
        if rows
        else _empty("No per-group figures.")
    )
    return f"<p>{summary}</p>{table}"
