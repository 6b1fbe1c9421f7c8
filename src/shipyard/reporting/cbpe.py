"""CBPE's estimated metrics in the reports: one terminal line, and an HTML table with each metric's band.

A metric that could not be estimated shows a dash and the reason, never a number made up for it.
"""

from __future__ import annotations

from html import escape

from shipyard.monitoring.cbpe_records import CBPE_METRICS, CLASS_METRICS, CbpeEstimate, MetricEstimate
from shipyard.reporting.fields import MISSING, finite, fmt_count, fmt_number, label_text
from shipyard.reporting.markup import cell, empty, table

NAMES = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1", "roc_auc": "ROC AUC"}
MAX_CLASS_ROWS = 20


def band_text(metric: MetricEstimate) -> str:
    """ "0.871 [0.842, 0.900]", the band being ±3 sampling errors; the reason when there is no value."""
    value = finite(metric.value)
    if value is None:
        return f"{MISSING} ({metric.reason or 'not estimated'})"
    low, high = finite(metric.lower), finite(metric.upper)
    band = f" [{fmt_number(low)}, {fmt_number(high)}]" if low is not None and high is not None else ""
    return f"{fmt_number(value)}{band}"


def _scope(cbpe: CbpeEstimate) -> str:
    if cbpe.average == "binary":
        return f"positive class {label_text(cbpe.positive, MISSING)}"
    return "macro average over classes"


def cbpe_line(cbpe: CbpeEstimate | None) -> str:
    """``shipyard monitor``'s line: each estimated metric with its band, over how many rows, on what basis."""
    if cbpe is None:
        return "no CBPE metrics (no window in this range holds class probabilities)"
    metrics = " · ".join(f"{NAMES[m]} {band_text(cbpe.metrics[m])}" for m in CBPE_METRICS)
    basis = "calibrated per class" if cbpe.calibrated else (cbpe.note or "uncalibrated")
    return f"{metrics}; {_scope(cbpe)}, {fmt_count(cbpe.rows)} rows, bands ±3 sampling errors; {basis}"


def cbpe_section(cbpe: CbpeEstimate | None) -> str:
    """The HTML table: metric, estimate, band and sampling error; then the same per class."""
    if cbpe is None:
        return ""
    rows = [_metric_row(NAMES[m], cbpe.metrics[m]) for m in CBPE_METRICS]
    grid = table(["metric", "estimate", "band (±3 SE)", "sampling error"], rows, numeric={1, 2, 3}, css="cbpe")
    basis = "calibrated per class" if cbpe.calibrated else (cbpe.note or "uncalibrated")
    caption = f"Estimated without labels (CBPE), {_scope(cbpe)}, {fmt_count(cbpe.rows)} rows; {basis}"
    parts = [f'<figure class="cbpe"><figcaption>{escape(caption)}</figcaption>{grid}</figure>']
    if cbpe.classes:
        class_rows = []
        for item in cbpe.classes[:MAX_CLASS_ROWS]:
            values = "".join(cell(band_text(item.metrics[m]), numeric=True) for m in CLASS_METRICS)
            class_rows.append(
                f'<tr><th scope="row">{escape(label_text(item.label, MISSING))}</th>{values}'
                + cell(fmt_number(finite(item.expected_support), digits=1), numeric=True)
                + cell(fmt_count(item.predicted), numeric=True)
                + "</tr>"
            )
        headers = ["class", *(NAMES[m] for m in CLASS_METRICS), "expected support", "predicted"]
        per_class = table(headers, class_rows, numeric={1, 2, 3, 4, 5, 6}, css="cbpe-per-class")
        rest = len(cbpe.classes) - MAX_CLASS_ROWS
        more = empty(f"{rest} more classes not listed; the report's JSON has them all.") if rest > 0 else ""
        parts.append(
            f'<figure class="cbpe-per-class"><figcaption>Estimated per class</figcaption>{per_class}{more}</figure>'
        )
    return "".join(parts)


def _metric_row(name: str, metric: MetricEstimate) -> str:
    value = finite(metric.value)
    if value is None:
        reason = escape(metric.reason or "not estimated")
        return f'<tr><th scope="row">{escape(name)}</th>{cell(MISSING, numeric=True)}<td colspan="2">{reason}</td></tr>'
    low, high = finite(metric.lower), finite(metric.upper)
    band = f"[{fmt_number(low)}, {fmt_number(high)}]" if low is not None and high is not None else MISSING
    return (
        f'<tr><th scope="row">{escape(name)}</th>'
        + cell(fmt_number(value), numeric=True)
        + cell(band, numeric=True)
        + cell(fmt_number(finite(metric.sampling_error), digits=4), numeric=True)
        + "</tr>"
    )
