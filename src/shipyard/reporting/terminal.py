"""The monitoring report in a terminal (`shipyard monitor ENDPOINT`), and as plain summary lines.

The terminal view answers "is this model still fine?" at a glance: one table of features per
version with the drifted ones on top in red, then one line each for traffic, performance, the
label-free estimate, fairness and data quality, and a classifier's per-class figures as a small table.
Lines are plain text first (`summary_lines` serves notifiers and logs too) and styled only here.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from shipyard.monitoring.drift_records import FeatureDrift, WindowDrift
from shipyard.monitoring.fairness import FairnessMetrics
from shipyard.monitoring.report import (
    DataQuality,
    Estimate,
    Fairness,
    FeatureQuality,
    MonitoringReport,
    Operational,
    Performance,
    VersionReport,
)
from shipyard.reporting.cbpe import cbpe_line
from shipyard.reporting.fields import (
    MISSING,
    drifted_first,
    errors_by_status,
    estimate_basis,
    finite,
    fmt_count,
    fmt_ms,
    fmt_number,
    fmt_rate,
    fmt_time,
    report_range,
    tested,
    unrouted_text,
)
from shipyard.reporting.joint_drift import label_drift_line, multivariate_line
from shipyard.reporting.labelled import figures_of, per_class_rows
from shipyard.reporting.loss import loss_line
from shipyard.reporting.outliers import outlier_line
from shipyard.reporting.quality_html import quality_tail


def render_terminal(report: MonitoringReport, console: Console) -> None:
    """Print the report: per version a feature table (drifted first) and one line per topic."""
    endpoint = report.endpoint
    window = report_range(report)
    heading = Text.assemble(("monitoring ", "bold"), (endpoint, "bold cyan"), "  ", window)
    console.print(heading)
    console.print(Text(f"generated {fmt_time(report.generated_at)}", style="dim"))
    unrouted = unrouted_text(report)
    if unrouted:
        console.print(Text(unrouted, style="yellow"))
    versions = report.versions
    if not versions:
        console.print(Text("no model version served requests in this range", style="yellow"))
        return
    for version in versions:
        console.print()
        console.rule(Text(_version_title(version), style="bold"), align="left")
        table = _feature_table(version, console.width)
        if table is not None:
            console.print(table)
        for label, line in version_lines(version):
            console.print(Text.assemble((f"{label}: ", "bold"), _styled(label, line)), highlight=False)
        per_class = _per_class_table(version.performance)
        if per_class is not None:
            console.print(per_class)


def summary_lines(report: MonitoringReport) -> list[str]:
    """The report as short plain-text lines, for notifiers, logs and `--quiet` output."""
    lines = [f"{report.endpoint}: {report_range(report)}"]
    unrouted = unrouted_text(report)
    if unrouted:
        lines.append(f"  {unrouted}")
    versions = report.versions
    if not versions:
        lines.append("  no model version served requests in this range")
    for version in versions:
        lines.append(_version_title(version))
        lines += [f"  {label}: {line}" for label, line in version_lines(version)]
    return lines


def version_lines(version: VersionReport) -> list[tuple[str, str]]:
    """(topic, plain text) pairs for one version: traffic, drift, performance, estimate, fairness, quality."""
    return [
        ("traffic", _traffic(version.operational)),
        ("drift", _drift(version.drift)),
        ("multivariate", multivariate_line(version.drift)),
        ("labels", label_drift_line(version.label_drift)),
        ("performance", _performance(version.performance)),
        ("estimate", _estimate(version.estimated)),
        ("cbpe", cbpe_line(version.estimated.cbpe if version.estimated is not None else None)),
        *([("error estimate", loss_line(version.estimated_loss))] if version.estimated_loss is not None else []),
        ("fairness", _fairness(version.fairness)),
        ("outliers", outlier_line(version.outliers)),
        ("quality", _quality(version.quality)),
    ]


def _version_title(version: VersionReport) -> str:
    name = version.version
    return f"{name} ({', '.join(version.arms)})" if version.arms else name


def _styled(label: str, line: str) -> Text:
    # A warning colour only where the line reports trouble, so a healthy report reads calm.
    if label == "drift" and "drifted" in line:
        return Text(line, style="red")
    if line.startswith("no "):
        return Text(line, style="dim")
    return Text(line)


# Columns as shown, and the order in which they are given up when the console is too narrow for all.
COLUMNS = ("status", "feature", "test", "score", "threshold", "p-value", "missing", "out of range")
DROP_ORDER = ("out of range", "missing", "p-value", "threshold", "test")
FEATURE_MIN_WIDTH = 10  # long names fold onto more lines below this; the status and score stay readable


def _feature_rows(version: VersionReport) -> list[dict[str, Text]]:
    features = drifted_first(version.drift.features if version.drift is not None else ())
    quality = {q.feature: q for q in version.quality.features}
    names = [f.feature for f in features]
    extra = [name for name in quality if name not in names]  # profiled for quality but not tested for drift
    pairs: list[tuple[FeatureDrift | None, str]] = [*zip(features, names, strict=True), *((None, n) for n in extra)]
    rows = []
    for feature, name in pairs:
        q: FeatureQuality | None = quality.get(name)
        drifted = feature is not None and feature.drifted
        if drifted:
            status = Text("DRIFT", style="bold red")
        elif feature is not None and tested(feature):
            status = Text("ok", style="green")
        else:
            status = Text(MISSING if feature is None else "untested", style="dim")
        # Text, not str: a str cell is parsed as Rich markup, and these values come from user data.
        rows.append(
            {
                "status": status,
                "feature": Text(name, style="bold red" if drifted else ""),
                "score": Text(fmt_number(finite(feature.score) if feature is not None else None)),
                "test": Text((feature.test or MISSING) if feature is not None else MISSING),
                "threshold": Text(fmt_number(finite(feature.threshold) if feature is not None else None)),
                "p-value": Text(fmt_number(finite(feature.p_value) if feature is not None else None)),
                "missing": Text(fmt_rate(finite(q.missing_rate) if q is not None else None)),
                "out of range": Text(
                    MISSING if q is None else f"{fmt_count(q.out_of_range)} ({fmt_rate(finite(q.out_of_range_rate))})"
                ),
            }
        )
    return rows


def _feature_table(version: VersionReport, width: int) -> Table | None:
    """The features table with as many columns as the console fits; Rich alone would squeeze all to '…'."""
    rows = _feature_rows(version)
    if not rows:
        return None

    def needed(column: str) -> int:
        longest = max([len(column), *(row[column].cell_len for row in rows)])
        return (min(longest, FEATURE_MIN_WIDTH) if column == "feature" else longest) + 3

    columns = list(COLUMNS)
    for column in DROP_ORDER:
        if sum(needed(c) for c in columns) <= width:
            break
        columns.remove(column)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    for column in columns:
        if column == "feature":
            table.add_column(column, overflow="fold", min_width=min(needed(column) - 3, FEATURE_MIN_WIDTH))
        else:
            justify: JustifyMethod = "left" if column in ("status", "test") else "right"
            table.add_column("" if column == "status" else column, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*(row[c] for c in columns))
    return table


def _traffic(ops: Operational) -> str:
    rate = finite(ops.request_rate_per_s)
    by_status = errors_by_status(ops.errors)
    latency = ops.latency_ms
    parts = [
        f"{fmt_count(ops.requests)} requests" + (f" ({fmt_number(rate)}/s)" if rate is not None else ""),
        f"error rate {fmt_rate(finite(ops.error_rate))}" + (f" ({by_status})" if by_status else ""),
    ]
    percentiles = [("p50", finite(latency.p50)), ("p95", finite(latency.p95)), ("p99", finite(latency.p99))]
    if any(value is not None for _, value in percentiles):
        parts.append("latency " + " · ".join(f"{p} {fmt_ms(value)}" for p, value in percentiles))
    if ops.dropped:
        parts.append(f"{fmt_count(ops.dropped)} not profiled (monitoring buffer full)")
    return " · ".join(parts)


def _drift(drift: WindowDrift | None) -> str:
    if drift is None:
        return "no reference profile: drift is not measured for this version"
    features = drift.features
    drifted = list(drift.drifted_features) or [f.feature for f in features if f.drifted]
    if not features:
        return "no feature has live data in this range yet"
    line = (
        f"{len(drifted)} of {len(features)} features drifted: {', '.join(drifted)}"
        if drifted
        else f"no drift in {len(features)} features"
    )
    if drift.drift_share is not None:
        verdict = "drifted" if drift.dataset_drifted else "not drifted"
        line += f" · dataset {verdict} (share {drift.drift_share:.0%}, limit {drift.drift_share_threshold:.0%})"
    prediction = drift.prediction
    if prediction is not None:
        verdict = "drifted" if prediction.drifted else "no drift"
        score = fmt_number(finite(prediction.score))
        line += f" · predictions {prediction.test or 'score'} {score} ({verdict})"
    return line


# The figures the one-line summary shows of a classifier's and of a regressor's.
SUMMARY_FIGURES = ("accuracy", "F1", "ROC AUC", "average precision", "Brier score", "MAE", "RMSE", "R²")
MAX_PER_CLASS_ROWS = 20  # the terminal shows the first classes; the HTML report and the JSON have them all


def _per_class_table(performance: Performance | None) -> Table | None:
    """Precision, recall, F1, support and predicted count per class, in the model's class order."""
    classification = performance.classification if performance is not None else None
    if classification is None or not classification.per_class:
        return None
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False, title_justify="left")
    table.add_column("class", overflow="fold", min_width=FEATURE_MIN_WIDTH)
    for column in ("precision", "recall", "F1", "support", "predicted"):
        table.add_column(column, justify="right", no_wrap=True)
    rows = per_class_rows(classification)
    for label, *values in rows[:MAX_PER_CLASS_ROWS]:
        table.add_row(Text(label), *(Text(v) for v in values))  # Text: class names are user data, not markup
    if len(rows) > MAX_PER_CLASS_ROWS:
        table.caption = f"{len(rows) - MAX_PER_CLASS_ROWS} more classes in the HTML report"
    return table


def _performance(performance: Performance | None) -> str:
    if performance is None:
        return "no labels yet"
    parts = [f"{fmt_count(performance.labelled)} labelled"]
    parts += [f"{label} {fmt_number(value)}" for label, value in figures_of(performance) if label in SUMMARY_FIGURES]
    classification = performance.classification
    calibration = classification.calibration if classification is not None else None
    ece = finite(calibration.ece) if calibration is not None else None
    if ece is not None:
        parts.append(f"ECE {fmt_number(ece)}")
    reward = performance.reward
    if reward is not None:
        low, high = finite(reward.ci_low), finite(reward.ci_high)
        interval = f" [{fmt_number(low)}, {fmt_number(high)}]" if low is not None and high is not None else ""
        parts.append(f"reward {fmt_number(finite(reward.mean))}{interval} (n={fmt_count(reward.n)})")
    return " · ".join(parts)


def _estimate(estimated: Estimate | None) -> str:
    if estimated is None:
        return "no label-free estimate"
    line = f"{estimated.method.upper()} accuracy {fmt_number(finite(estimated.accuracy))}"
    realised = finite(estimated.realised_accuracy)
    if realised is not None:
        line += f" vs realised {fmt_number(realised)} (difference {fmt_number(finite(estimated.difference))})"
    return f"{line}; {estimate_basis(estimated)}"


def _fairness(fairness: Fairness | None) -> str:
    if fairness is None:
        return "no sensitive feature configured, or no labels yet"
    metrics: FairnessMetrics = fairness.metrics
    return (
        f"{fairness.feature}: demographic parity difference "
        f"{fmt_number(finite(metrics.demographic_parity_difference))} · equalized odds difference "
        f"{fmt_number(finite(metrics.equalized_odds_difference))} over {len(metrics.groups)} groups"
    )


def _quality(quality: DataQuality) -> str:
    features = quality.features
    out_of_range = sum(f.out_of_range for f in features)
    unseen = sum(f.unseen for f in features)
    violations = sum(f.type_violations for f in features)
    unknown = quality.unknown_features
    extra = f" · unknown features sent: {', '.join(unknown)}" if unknown else ""
    return (
        f"{fmt_count(quality.rejected_requests)} rejected requests · "
        f"{out_of_range:,} out of range · {unseen:,} unseen categories · "
        f"{violations:,} type violations{extra}{quality_tail(quality)}"
    )
