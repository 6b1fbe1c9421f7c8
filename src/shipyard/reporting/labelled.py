"""Report sections built from labels and feedback: performance, calibration and fairness.

These are the figures that arrive late (feedback trails predictions by minutes to weeks) and are
often partial, so each says plainly what it lacks and shows the service's notes on why a figure is
missing, rather than a bare dash.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from shipyard.reporting.fields import (
    MISSING,
    as_number,
    estimate_basis,
    first_number,
    fmt_count,
    fmt_number,
    fmt_rate,
    items,
    notes,
    number,
    section,
    strings,
    text,
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
from shipyard.reporting.svg import CalibrationPoint, Series, reliability_chart
from shipyard.reporting.timeline import Timeline

CLASSIFICATION = (
    ("accuracy", ("accuracy",)),
    ("precision", ("precision",)),
    ("recall", ("recall",)),
    ("F1", ("f1",)),
    ("ROC AUC", ("roc_auc",)),
    ("log loss", ("log_loss",)),
)
REGRESSION = (("MAE", ("mae",)), ("RMSE", ("rmse",)), ("R²", ("r2",)), ("bias", ("bias", "mean_error")))
MAX_CONFUSION_CLASSES = 20  # a bigger matrix is unreadable as a table, and the per-class figures say more


def is_regression(performance: Mapping[str, Any]) -> bool:
    """Whether the figures are a regressor's (MAE, RMSE, R²) rather than a classifier's."""
    return performance.get("kind") == "regression" or "mae" in performance or "rmse" in performance


def _performance_figures(performance: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = [("labelled", fmt_count(first_number(performance, "labelled", "n")))]
    names = REGRESSION if is_regression(performance) else CLASSIFICATION
    pairs += [
        (label, fmt_number(first_number(performance, *keys)))
        for label, keys in names
        if any(key in performance for key in keys)
    ]
    average = text(performance, "average")
    if average:
        pairs.append(("averaging", average))
    reward = section(performance, "reward")
    if reward:
        low, high = number(reward, "ci_low"), number(reward, "ci_high")
        pairs.append(("mean reward", fmt_number(number(reward, "mean"))))
        if low is not None and high is not None:
            level = number(reward, "confidence") or 0.95
            pairs.append((f"reward {level * 100:g}% interval", f"{fmt_number(low)}\N{EN DASH}{fmt_number(high)}"))
        pairs.append(("rewarded predictions", fmt_count(number(reward, "n"))))
    return pairs


def _confusion(performance: Mapping[str, Any]) -> str:
    confusion = section(performance, "confusion_matrix")
    labels = strings(confusion, "labels")
    matrix = confusion.get("matrix")
    if not labels or len(labels) > MAX_CONFUSION_CLASSES or not isinstance(matrix, list):
        return ""
    rows = []
    for label, counts in zip(labels, matrix, strict=False):
        if not isinstance(counts, list):
            return ""
        rows.append(
            f'<tr><th scope="row">{escape(label)}</th>'
            + "".join(cell(fmt_count(as_number(c)), numeric=True) for c in counts)
            + "</tr>"
        )
    grid = table(
        ["label ↓ / predicted →", *labels], rows, numeric=set(range(1, len(labels) + 1)), css="confusion-table"
    )
    return f'<figure class="confusion"><figcaption>Confusion matrix</figcaption>{grid}</figure>'


def performance_section(version: Mapping[str, Any], timeline: Timeline, endpoint: str) -> str:
    """Metrics from labelled feedback, the label-free estimate, and both per window."""
    performance = section(version, "performance")
    estimated = section(version, "estimated")
    parts = []
    if performance:
        parts.append(figures(_performance_figures(performance)))
        parts.append(notes_list(notes(performance)))
        parts.append(_confusion(performance))
    else:
        parts.append(
            empty(
                f"No labels yet: accuracy appears once labelled feedback arrives "
                f"(POST /v1/endpoints/{endpoint}/feedback)."
            )
        )
    if estimated:
        method = text(estimated, "method", "estimate").upper()
        realised = number(estimated, "realised_accuracy")
        against = (
            f"; realised {escape(fmt_number(realised))} (difference "
            f"{escape(fmt_number(number(estimated, 'difference')))})"
            if realised is not None
            else "; no labels to check it against yet"
        )
        parts.append(
            f'<p class="estimate">Estimated accuracy ({escape(method)}, without labels): '
            f"<strong>{escape(fmt_number(number(estimated, 'accuracy')))}</strong>{against}; "
            f"{escape(estimate_basis(estimated))}</p>"
        )
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


def calibration_section(version: Mapping[str, Any]) -> str:
    """The reliability curve: predicted probability against the observed rate, with the diagonal."""
    calibration = section(section(version, "performance"), "calibration")
    points = []
    # The spec names the bins "curve"; the service's calibration object calls them "bins".
    for item in items(calibration, "curve") or items(calibration, "bins"):
        predicted, positive = number(item, "mean_predicted"), number(item, "fraction_positive")
        if predicted is None or positive is None:
            continue  # an empty bin has no point to place
        label = f"{fmt_number(number(item, 'low'))}\N{EN DASH}{fmt_number(number(item, 'high'))}"
        points.append(CalibrationPoint(label, predicted, positive, number(item, "count")))
    if not points:
        return empty("No calibration curve yet: it needs labelled predictions with probabilities.")
    caption = f"Reliability curve (ECE {fmt_number(number(calibration, 'ece'))})"
    method = text(calibration, "method")
    chart = reliability_chart(title=caption, points=points, color=ACCURACY_COLOR, diagonal_color=DIAGONAL_COLOR)
    detail = f'<span class="muted"> · {escape(method.replace("_", " "))}</span>' if method else ""
    return f'<figure class="calibration-chart"><figcaption>{escape(caption)}{detail}</figcaption>{chart}</figure>'


def fairness_section(version: Mapping[str, Any]) -> str:
    """Between-group differences and the per-group rates behind them."""
    fairness = section(version, "fairness")
    if not fairness:
        return empty("No fairness figures: no sensitive feature is configured, or no labels yet.")
    summary = (
        f"Sensitive feature <strong>{escape(text(fairness, 'feature', '?'))}</strong>, positive label "
        f"{escape(text(fairness, 'positive', MISSING))}: demographic parity difference "
        f"<strong>{fmt_number(number(fairness, 'demographic_parity_difference'))}</strong>, equalized odds "
        f"difference <strong>{fmt_number(number(fairness, 'equalized_odds_difference'))}</strong>"
    )
    rows = [
        f'<tr><th scope="row">{escape(text(g, "group", "?"))}</th>'
        + cell(fmt_count(number(g, "count")), numeric=True)
        + cell(fmt_rate(number(g, "selection_rate")), numeric=True)
        + cell(fmt_number(first_number(g, "tpr", "true_positive_rate")), numeric=True)
        + cell(fmt_number(first_number(g, "fpr", "false_positive_rate")), numeric=True)
        + "</tr>"
        for g in items(fairness, "groups")
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
    return f"<p>{summary}</p>{groups}{notes_list(notes(fairness))}"
