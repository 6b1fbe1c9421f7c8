"""Report sections built from labels and feedback: performance, calibration and fairness.

These are the figures that arrive late (feedback trails predictions by minutes to weeks) and are
often partial, so each says plainly what it lacks and shows the service's notes on why a figure is
missing, rather than a bare dash.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from shipyard.core.jsonsafe import json_value
from shipyard.monitoring.metrics import ClassificationPerformance
from shipyard.monitoring.report import Performance, VersionReport
from shipyard.reporting.cbpe import cbpe_section
from shipyard.reporting.fields import (
    MISSING,
    estimate_basis,
    finite,
    fmt_count,
    fmt_number,
    fmt_rate,
    label_text,
)
from shipyard.reporting.markup import (
    ACCURACY_COLOR,
    DIAGONAL_COLOR,
    ESTIMATE_COLOR,
    REWARD_COLOR,
    cell,
    empty,
    figures,
    has,
    notes_list,
    table,
    time_figure,
)
from shipyard.reporting.svg import CalibrationPoint, Series, precision_recall_chart, reliability_chart
from shipyard.reporting.timeline import Timeline

MAX_CONFUSION_CLASSES = 20  # a bigger matrix is unreadable as a table, and the per-class figures say more
MAX_PER_CLASS_ROWS = 100  # one row per class; past this the file grows more than a reader gains


def figures_of(performance: Performance) -> list[tuple[str, float | None]]:
    """The model's own figures by display name: a classifier's or a regressor's, none before labels."""
    c, r = performance.classification, performance.regression
    if c is not None:
        values = (c.accuracy, c.precision, c.recall, c.f1, c.roc_auc, c.average_precision, c.log_loss, c.brier_score)
        names = ("accuracy", "precision", "recall", "F1", "ROC AUC", "average precision", "log loss", "Brier score")
        return [(name, finite(value)) for name, value in zip(names, values, strict=True)]
    if r is not None:
        return [("MAE", finite(r.mae)), ("RMSE", finite(r.rmse)), ("R²", finite(r.r2)), ("bias", finite(r.mean_error))]
    return []


def notes_of(performance: Performance) -> Mapping[str, str]:
    """Why a figure is missing or special, as the classifier's or regressor's result explains it."""
    result = performance.classification or performance.regression
    return result.notes if result is not None else {}


def _performance_figures(performance: Performance) -> list[tuple[str, str]]:
    pairs = [("labelled", fmt_count(performance.labelled))]
    pairs += [(label, fmt_number(value)) for label, value in figures_of(performance)]
    if performance.classification is not None:
        pairs.append(("averaging", performance.classification.average))
    reward = performance.reward
    if reward is not None:
        low, high = finite(reward.ci_low), finite(reward.ci_high)
        pairs.append(("mean reward", fmt_number(finite(reward.mean))))
        if low is not None and high is not None:
            level = finite(reward.confidence) or 0.95
            pairs.append((f"reward {level * 100:g}% interval", f"{fmt_number(low)}\N{EN DASH}{fmt_number(high)}"))
        pairs.append(("rewarded predictions", fmt_count(reward.n)))
    return pairs


def _confusion(classification: ClassificationPerformance | None) -> str:
    if classification is None:
        return ""
    shown = [json_value(c) for c in classification.classes]
    labels = [str(label) for label in shown if label is not None]
    if not labels or len(labels) > MAX_CONFUSION_CLASSES:
        return ""
    rows = []
    for label, counts in zip(labels, classification.confusion_matrix, strict=False):
        rows.append(
            f'<tr><th scope="row">{escape(label)}</th>'
            + "".join(cell(fmt_count(c), numeric=True) for c in counts)
            + "</tr>"
        )
    grid = table(
        ["label ↓ / predicted →", *labels], rows, numeric=set(range(1, len(labels) + 1)), css="confusion-table"
    )
    return f'<figure class="confusion"><figcaption>Confusion matrix</figcaption>{grid}</figure>'


def per_class_rows(classification: ClassificationPerformance) -> list[tuple[str, str, str, str, str, str]]:
    """(class, precision, recall, F1, support, predicted) as display text, in the model's class order."""
    return [
        (
            label_text(c.label, MISSING),
            fmt_number(finite(c.precision)),
            fmt_number(finite(c.recall)),
            fmt_number(finite(c.f1)),
            fmt_count(c.support),
            fmt_count(c.predicted),
        )
        for c in classification.per_class
    ]


def _per_class(classification: ClassificationPerformance | None) -> str:
    if classification is None or not classification.per_class:
        return ""
    rows = [
        f'<tr><th scope="row">{escape(label)}</th>' + "".join(cell(v, numeric=True) for v in values) + "</tr>"
        for label, *values in per_class_rows(classification)[:MAX_PER_CLASS_ROWS]
    ]
    grid = table(
        ["class", "precision", "recall", "F1", "support", "predicted"], rows, numeric={1, 2, 3, 4, 5}, css="per-class"
    )
    rest = len(classification.per_class) - MAX_PER_CLASS_ROWS
    more = empty(f"{rest} more classes not listed; the report's JSON has them all.") if rest > 0 else ""
    return f'<figure class="per-class"><figcaption>Per class</figcaption>{grid}{more}</figure>'


def _precision_recall(classification: ClassificationPerformance | None) -> str:
    curve = classification.precision_recall_curve if classification is not None else None
    if classification is None or curve is None or not curve.recall:
        return ""
    positive = label_text(curve.positive, MISSING)
    average = fmt_number(finite(classification.average_precision))
    caption = f"Precision-recall curve for {positive} (average precision {average})"
    # The first stored point is the lowest threshold, where every row counts as positive: its precision is the
    # share of positives, what a model guessing at random would score.
    chart = precision_recall_chart(
        title=caption,
        recall=curve.recall,
        precision=curve.precision,
        thresholds=curve.thresholds,
        baseline=finite(curve.precision[0]),
        color=ACCURACY_COLOR,
        baseline_color=DIAGONAL_COLOR,
    )
    thinned = (
        f" · {fmt_count(len(curve.recall))} of {fmt_count(curve.points)} points"
        if curve.points > len(curve.recall)
        else ""
    )
    detail = f'<span class="muted">{escape(thinned)}</span>' if thinned else ""
    return f'<figure class="precision-recall"><figcaption>{escape(caption)}{detail}</figcaption>{chart}</figure>'


def performance_figures(performance: Performance) -> str:
    """The realised figures, their notes, the confusion matrix, per-class table and precision-recall curve."""
    return "".join(
        (
            figures(_performance_figures(performance)),
            notes_list([(k, v) for k, v in notes_of(performance).items() if v]),
            _confusion(performance.classification),
            _per_class(performance.classification),
            _precision_recall(performance.classification),
        )
    )


def performance_section(version: VersionReport, timeline: Timeline, endpoint: str) -> str:
    """Metrics from labelled feedback, the label-free estimate, and both per window."""
    performance = version.performance
    estimated = version.estimated
    parts = []
    if performance is not None:
        parts.append(performance_figures(performance))
    else:
        parts.append(
            empty(
                f"No labels yet: accuracy appears once labelled feedback arrives "
                f"(POST /v1/endpoints/{endpoint}/feedback)."
            )
        )
    if estimated is not None:
        method = estimated.method.upper()
        realised = finite(estimated.realised_accuracy)
        against = (
            f"; realised {escape(fmt_number(realised))} (difference {escape(fmt_number(finite(estimated.difference)))})"
            if realised is not None
            else "; no labels to check it against yet"
        )
        parts.append(
            f'<p class="estimate">Estimated accuracy ({escape(method)}, without labels): '
            f"<strong>{escape(fmt_number(finite(estimated.accuracy)))}</strong>{against}; "
            f"{escape(estimate_basis(estimated))}</p>"
        )
        parts.append(cbpe_section(estimated.cbpe))
    series = [
        Series("accuracy", [p.accuracy for p in timeline.points], ACCURACY_COLOR),
        Series("estimated accuracy", [p.estimated_accuracy for p in timeline.points], ESTIMATE_COLOR, dashed=True),
        Series("reward rate", [p.reward_rate for p in timeline.points], REWARD_COLOR),
    ]
    series = [s for s in series if has(s.values)]
    if series:
        figure = time_figure("Performance per window", timeline, series, y_label="rate", y_min=0.0, y_max=1.0)
        parts.append(f'<div class="charts">{figure}</div>')
    else:
        parts.append(empty("No accuracy, estimate or reward per window yet."))
    return "".join(parts)


def calibration_section(version: VersionReport) -> str:
    """The reliability curve: predicted probability against the observed rate, with the diagonal."""
    classification = version.performance.classification if version.performance is not None else None
    calibration = classification.calibration if classification is not None else None
    points = []
    for item in calibration.bins if calibration is not None else ():
        predicted, positive = finite(item.mean_predicted), finite(item.fraction_positive)
        if predicted is None or positive is None:
            continue  # an empty bin has no point to place
        label = f"{fmt_number(finite(item.low))}\N{EN DASH}{fmt_number(finite(item.high))}"
        points.append(CalibrationPoint(label, predicted, positive, float(item.count)))
    if calibration is None or not points:
        return empty("No calibration curve yet: it needs labelled predictions with probabilities.")
    caption = f"Reliability curve (ECE {fmt_number(finite(calibration.ece))})"
    method = calibration.method
    chart = reliability_chart(title=caption, points=points, color=ACCURACY_COLOR, diagonal_color=DIAGONAL_COLOR)
    detail = f'<span class="muted"> · {escape(method.replace("_", " "))}</span>' if method else ""
    return f'<figure class="calibration-chart"><figcaption>{escape(caption)}{detail}</figcaption>{chart}</figure>'


def fairness_section(version: VersionReport) -> str:
    """Between-group differences and the per-group rates behind them."""
    fairness = version.fairness
    if fairness is None:
        return empty("No fairness figures: no sensitive feature is configured, or no labels yet.")
    metrics = fairness.metrics
    summary = (
        f"Sensitive feature <strong>{escape(fairness.feature)}</strong>, positive label "
        f"{escape(label_text(metrics.positive, MISSING))}: demographic parity difference "
        f"<strong>{fmt_number(finite(metrics.demographic_parity_difference))}</strong>, equalized odds "
        f"difference <strong>{fmt_number(finite(metrics.equalized_odds_difference))}</strong>"
    )
    rows = [
        f'<tr><th scope="row">{escape(label_text(g.group, "?"))}</th>'
        + cell(fmt_count(g.count), numeric=True)
        + cell(fmt_rate(finite(g.selection_rate)), numeric=True)
        + cell(fmt_number(finite(g.true_positive_rate)), numeric=True)
        + cell(fmt_number(finite(g.false_positive_rate)), numeric=True)
        + "</tr>"
        for g in metrics.groups
    ]
    groups = (
        table(
            ["group", "count", "selection rate", "true positive rate", "false positive rate"],
            rows,
            numeric={1, 2, 3, 4},
            css="fairness-table",
        )
        if rows
        else empty("No per-group figures.")
    )
    notes = [(k, v) for k, v in metrics.notes.items() if v]
    return f"<p>{summary}</p>{groups}{notes_list(notes)}"
