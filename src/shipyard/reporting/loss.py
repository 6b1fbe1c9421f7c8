"""The label-free error section of the reports (DLE): one terminal line, and an HTML table of MAE and RMSE.

Each estimate is shown with its band beside the realised figure from feedback, or the reason there is none
(a regressor registered without a target, no row scored yet) instead of an empty number.
"""

from __future__ import annotations

from shipyard.monitoring.loss_estimate import LossEstimate, LossFigure
from shipyard.reporting.fields import MISSING, finite, fmt_count, fmt_number
from shipyard.reporting.markup import cell, empty, figures, table


def loss_line(estimate: LossEstimate | None) -> str:
    """``shipyard monitor``'s line: "DLE MAE 41.2 (35.1-47.3) vs realised 43.0; RMSE ... on 1,000 rows"."""
    if estimate is None:
        return "not a regressor"
    if estimate.basis is None or not estimate.rows:
        return f"no label-free MAE/RMSE: {estimate.note}"
    parts = [f"{name} {_figure(figure)}" for name, figure in (("MAE", estimate.mae), ("RMSE", estimate.rmse))]
    return f"DLE {'; '.join(parts)} on {fmt_count(estimate.rows)} rows; {_basis(estimate)}"


def loss_section(estimate: LossEstimate | None) -> str:
    """The HTML section: what the loss model learnt from, then estimate, band, realised and reference per figure."""
    if estimate is None:
        return empty("Not a regressor: its label-free estimate is the accuracy above.")
    if estimate.basis is None:
        return empty(f"No label-free MAE/RMSE: {estimate.note}.")
    tiles = figures(
        [
            ("rows scored", fmt_count(estimate.rows)),
            ("rows not scored", fmt_count(estimate.unscored)),
            ("loss model", _basis(estimate)),
        ]
    )
    if not estimate.rows:
        return tiles + empty(f"{(estimate.note or 'no rows scored').capitalize()}.")
    rows = [
        f'<tr><th scope="row">{name}</th>'
        + cell(_number(figure.estimate), numeric=True)
        + cell(_band(figure), numeric=True)
        + cell(_number(figure.realised), numeric=True)
        + cell(_number(figure.difference), numeric=True)
        + cell(_number(figure.reference), numeric=True)
        + "</tr>"
        for name, figure in (("MAE", estimate.mae), ("RMSE", estimate.rmse))
    ]
    headers = ["", "estimated", "band (3 sampling errors)", "realised", "estimate - realised", "on loss-model rows"]
    return tiles + table(headers, rows, numeric={1, 2, 3, 4, 5}, css="loss-table")


def _figure(figure: LossFigure) -> str:
    line = f"{_number(figure.estimate)} ({_band(figure)})"
    if figure.realised is not None:
        line += f" vs realised {_number(figure.realised)}"
    return line


def _band(figure: LossFigure) -> str:
    low, high = finite(figure.low), finite(figure.high)
    return MISSING if low is None or high is None else f"{fmt_number(low)}-{fmt_number(high)}"


def _number(value: float | None) -> str:
    return fmt_number(finite(value))


def _basis(estimate: LossEstimate) -> str:
    basis = estimate.basis
    if basis is None:
        return estimate.note or MISSING
    return f"learnt on {fmt_count(basis.rows)} {basis.data} rows"
