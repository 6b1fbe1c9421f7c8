"""The monitoring report in a terminal (`shipyard monitor ENDPOINT`), and as plain summary lines.

The terminal view answers "is this model still fine?" at a glance: one table of features per
version with the drifted ones on top in red, then one line each for traffic, performance, the
label-free estimate, fairness and data quality. Lines are plain text first (`summary_lines` serves
notifiers and logs too) and styled only here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from shipyard.reporting.fields import (
    MISSING,
    drifted_first,
    errors_by_status,
    estimate_basis,
    fmt_count,
    fmt_ms,
    fmt_number,
    fmt_range,
    fmt_rate,
    fmt_time,
    items,
    number,
    section,
    strings,
    tested,
    text,
    unrouted_text,
)


def render_terminal(report: Mapping[str, Any], console: Console) -> None:
    """Print the report: per version a feature table (drifted first) and one line per topic."""
    endpoint = text(report, "endpoint", "unknown endpoint")
    window = fmt_range(section(report, "window"))
    heading = Text.assemble(("monitoring ", "bold"), (endpoint, "bold cyan"), "  ", window)
    console.print(heading)
    console.print(Text(f"generated {fmt_time(report.get('generated_at'))}", style="dim"))
    unrouted = unrouted_text(report)
    if unrouted:
        console.print(Text(unrouted, style="yellow"))
    versions = items(report, "versions")
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


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The report as short plain-text lines, for notifiers, logs and `--quiet` output."""
    endpoint = text(report, "endpoint", "unknown endpoint")
    lines = [f"{endpoint}: {fmt_range(section(report, 'window'))}"]
    unrouted = unrouted_text(report)
    if unrouted:
        lines.append(f"  {unrouted}")
    versions = items(report, "versions")
    if not versions:
        lines.append("  no model version served requests in this range")
    for version in versions:
        lines.append(_version_title(version))
        lines += [f"  {label}: {line}" for label, line in version_lines(version)]
    return lines


def version_lines(version: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(topic, plain text) pairs for one version: traffic, drift, performance, estimate, fairness, quality."""
    return [
        ("traffic", _traffic(section(version, "operational"))),
        ("drift", _drift(section(version, "drift"))),
        ("performance", _performance(section(version, "performance"))),
        ("estimate", _estimate(section(version, "estimated"))),
        ("fairness", _fairness(section(version, "fairness"))),
        ("quality", _quality(section(version, "quality"))),
    ]


def _version_title(version: Mapping[str, Any]) -> str:
    arms = strings(version, "arms")
    name = text(version, "version", "unknown version")
    return f"{name} ({', '.join(arms)})" if arms else name


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


def _feature_rows(version: Mapping[str, Any]) -> list[dict[str, Text]]:
    features = drifted_first(items(section(version, "drift"), "features"))
    quality = {text(q, "feature"): q for q in items(section(version, "quality"), "features")}
    names = [text(f, "feature", "?") for f in features]
    extra = [name for name in quality if name not in names]  # profiled for quality but not tested for drift
    rows = []
    for feature, name in [*zip(features, names, strict=True), *(({}, name) for name in extra)]:
        q = quality.get(name, {})
        drifted = feature.get("drifted")
        if drifted is True:
            status = Text("DRIFT", style="bold red")
        elif tested(feature):
            status = Text("ok", style="green")
        else:
            status = Text(MISSING if not feature else "untested", style="dim")
        out = number(q, "out_of_range")
        # Text, not str: a str cell is parsed as Rich markup, and these values come from user data.
        rows.append(
            {
                "status": status,
                "feature": Text(name, style="bold red" if drifted is True else ""),
                "score": Text(fmt_number(number(feature, "score"))),
                "test": Text(text(feature, "test", MISSING)),
                "threshold": Text(fmt_number(number(feature, "threshold"))),
                "p-value": Text(fmt_number(number(feature, "p_value"))),
                "missing": Text(fmt_rate(number(q, "missing_rate"))),
                "out of range": Text(
                    MISSING if out is None else f"{fmt_count(out)} ({fmt_rate(number(q, 'out_of_range_rate'))})"
                ),
            }
        )
    return rows


def _feature_table(version: Mapping[str, Any], width: int) -> Table | None:
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


def _traffic(ops: Mapping[str, Any]) -> str:
    if not ops:
        return "no traffic figures in this range"
    rate = number(ops, "request_rate_per_s")
    errors = section(ops, "errors")
    by_status = errors_by_status(errors)
    latency = section(ops, "latency_ms")
    parts = [
        f"{fmt_count(number(ops, 'requests'))} requests" + (f" ({fmt_number(rate)}/s)" if rate is not None else ""),
        f"error rate {fmt_rate(number(ops, 'error_rate'))}" + (f" ({by_status})" if by_status else ""),
    ]
    percentiles = [(p, number(latency, p)) for p in ("p50", "p95", "p99")]
    if any(value is not None for _, value in percentiles):
        parts.append("latency " + " · ".join(f"{p} {fmt_ms(value)}" for p, value in percentiles))
    dropped = number(ops, "dropped")
    if dropped:
        parts.append(f"{fmt_count(dropped)} not profiled (monitoring buffer full)")
    return " · ".join(parts)


def _drift(drift: Mapping[str, Any]) -> str:
    if not drift:
        return "no reference profile: drift is not measured for this version"
    features = items(drift, "features")
    drifted = strings(drift, "drifted_features") or [text(f, "feature") for f in features if f.get("drifted") is True]
    if not features:
        return "no feature has live data in this range yet"
    line = (
        f"{len(drifted)} of {len(features)} features drifted: {', '.join(drifted)}"
        if drifted
        else f"no drift in {len(features)} features"
    )
    prediction = section(drift, "prediction")
    if prediction:
        verdict = "drifted" if prediction.get("drifted") is True else "no drift"
        score = fmt_number(number(prediction, "score"))
        line += f" · predictions {text(prediction, 'test', 'score')} {score} ({verdict})"
    return line


def _performance(performance: Mapping[str, Any]) -> str:
    if not performance:
        return "no labels yet"
    if performance.get("kind") == "regression" or number(performance, "mae") is not None:
        names = (("MAE", "mae"), ("RMSE", "rmse"), ("R²", "r2"))
    else:
        names = (("accuracy", "accuracy"), ("F1", "f1"), ("ROC AUC", "roc_auc"))
    parts = [f"{fmt_count(number(performance, 'labelled'))} labelled"]
    parts += [f"{label} {fmt_number(number(performance, key))}" for label, key in names if key in performance]
    ece = number(section(performance, "calibration"), "ece")
    if ece is not None:
        parts.append(f"ECE {fmt_number(ece)}")
    reward = section(performance, "reward")
    if reward:
        low, high = number(reward, "ci_low"), number(reward, "ci_high")
        interval = f" [{fmt_number(low)}, {fmt_number(high)}]" if low is not None and high is not None else ""
        parts.append(f"reward {fmt_number(number(reward, 'mean'))}{interval} (n={fmt_count(number(reward, 'n'))})")
    return " · ".join(parts)


def _estimate(estimated: Mapping[str, Any]) -> str:
    if not estimated:
        return "no label-free estimate"
    method = text(estimated, "method", "estimate").upper()
    line = f"{method} accuracy {fmt_number(number(estimated, 'accuracy'))}"
    realised = number(estimated, "realised_accuracy")
    if realised is not None:
        line += f" vs realised {fmt_number(realised)} (difference {fmt_number(number(estimated, 'difference'))})"
    return f"{line}; {estimate_basis(estimated)}"


def _fairness(fairness: Mapping[str, Any]) -> str:
    if not fairness:
        return "no sensitive feature configured, or no labels yet"
    return (
        f"{text(fairness, 'feature', '?')}: demographic parity difference "
        f"{fmt_number(number(fairness, 'demographic_parity_difference'))} · equalized odds difference "
        f"{fmt_number(number(fairness, 'equalized_odds_difference'))} over {len(items(fairness, 'groups'))} groups"
    )


def _quality(quality: Mapping[str, Any]) -> str:
    if not quality:
        return "no data-quality figures in this range"
    features = items(quality, "features")

    def total(key: str) -> int:
        return round(sum(number(f, key) or 0.0 for f in features))

    unknown = strings(quality, "unknown_features")
    extra = f" · unknown features sent: {', '.join(unknown)}" if unknown else ""
    return (
        f"{fmt_count(number(quality, 'rejected_requests'))} rejected requests · "
        f"{total('out_of_range'):,} out of range · {total('unseen'):,} unseen categories · "
        f"{total('type_violations'):,} type violations{extra}"
    )
