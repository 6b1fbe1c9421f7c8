"""Multivariate and label drift as the terminal and the HTML report show them: a verdict line, then the figures
that back it (the PCA's mean error against its band; the class shares of training, feedback and predictions)."""

from __future__ import annotations

from html import escape

from shipyard.monitoring.drift_records import WindowDrift
from shipyard.monitoring.label_drift import LabelDrift
from shipyard.reporting.fields import fmt_number
from shipyard.reporting.markup import cell, empty, figures, table


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def multivariate_line(drift: WindowDrift | None) -> str:
    """One line: the PCA reconstruction error's verdict, its test and the mean error against the band."""
    section = drift.multivariate if drift is not None else None
    if section is None:
        return "not measured: no reference profile" if drift is None else "not in this report"
    error = section.error
    if error is None or error.test is None:
        return f"not tested: {section.note or 'no live rows'}"
    verdict = "drifted" if section.drifted else "no drift"
    score = fmt_number(error.p_value if error.p_value is not None else error.score)
    measure = "p" if error.p_value is not None else error.test
    return (
        f"{verdict} (PCA reconstruction error, {error.test} {measure}={score}; mean error "
        f"{fmt_number(section.live_mean)} vs band {fmt_number(section.lower)}-{fmt_number(section.upper)}, "
        f"{section.components} components keep {_share(section.variance_kept)} of the variance)"
    )


def label_drift_line(labels: LabelDrift | None) -> str:
    """One line: the labels' verdict and, for a classifier, each class's shift from its training share."""
    if labels is None:
        return "no labels to compare"
    shifts = ", ".join(f"{s.label} {_share(s.reference)}->{_share(s.labelled)}" for s in labels.priors)
    prior = f"; class shares training->labelled: {shifts}" if shifts else ""
    drift = labels.drift
    if drift is None or drift.test is None:
        reason = labels.note or (drift.note if drift is not None else None) or "not tested"
        return f"not tested ({labels.labelled} labels): {reason}{prior}"
    verdict = "drifted" if labels.drifted else "no drift"
    score = f"p={fmt_number(drift.p_value)}" if drift.p_value is not None else f"{drift.test}={fmt_number(drift.score)}"
    return f"{verdict} ({drift.test} {score}, {labels.labelled} labels){prior}"


def multivariate_section(drift: WindowDrift | None) -> str:
    section = drift.multivariate if drift is not None else None
    if section is None:
        return empty("No multivariate drift figures: this version has no reference profile.")
    error = section.error
    if error is None or error.test is None:
        return empty(f"Multivariate drift not tested: {section.note or 'no live rows'}.")
    badge = '<span class="badge bad">DRIFT</span>' if section.drifted else '<span class="badge ok">ok</span>'
    test = error.test if error.p_value is None else f"{error.test} (p = {fmt_number(error.p_value)})"
    tiles = figures(
        [
            ("test", test),
            ("live mean error", fmt_number(section.live_mean)),
            ("training mean error", fmt_number(section.reference_mean)),
            ("band (±3 standard errors)", f"{fmt_number(section.lower)} to {fmt_number(section.upper)}"),
            ("components", f"{section.components} ({_share(section.variance_kept)} of variance)"),
        ]
    )
    left_out = "; ".join(f"{name}: {why}" for name, why in section.left_out.items())
    note = f'<p class="empty">Left out of the PCA: {escape(left_out)}</p>' if left_out else ""
    return (
        f'<p class="multivariate-drift">PCA reconstruction error over {escape(", ".join(section.columns))}: '
        f"{badge}</p>{tiles}{note}"
    )


def label_drift_section(labels: LabelDrift | None) -> str:
    if labels is None:
        return empty("No label drift: this version's output is neither classes nor values.")
    drift = labels.drift
    if drift is None or drift.test is None:
        head = empty(f"Label drift not tested ({labels.labelled} labels): {labels.note or 'no test applies'}.")
    else:
        badge = '<span class="badge bad">DRIFT</span>' if labels.drifted else '<span class="badge ok">ok</span>'
        score = f"p = {fmt_number(drift.p_value)}" if drift.p_value is not None else fmt_number(drift.score)
        head = (
            f'<p class="label-drift">Labels against the training target: {escape(drift.test)} {escape(score)} '
            f"over {labels.labelled} labels {badge}</p>"
        )
    if not labels.priors:
        return head
    rows = [
        "<tr>"
        + cell(s.label)
        + cell(_share(s.reference), numeric=True)
        + cell(_share(s.labelled), numeric=True)
        + cell(_share(s.predicted), numeric=True)
        + cell(_signed(s.shift), numeric=True, warn=s.shift is not None and abs(s.shift) >= 0.05)
        + "</tr>"
        for s in labels.priors
    ]
    headers = ["class", "training share", "labelled share", "predicted share", "shift"]
    return head + table(headers, rows, numeric={1, 2, 3, 4}, css="prior-table")
