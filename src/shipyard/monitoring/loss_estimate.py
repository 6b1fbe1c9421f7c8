"""A regressor's MAE and RMSE estimated without labels (DLE), with bands, beside the realised ones.

This is the report's record of the estimate (``VersionReport.estimated_loss``): built from a window's merged
``LossSummary`` and the version's ``LossModel`` (``monitoring.dle``), or, when there is no loss model or no
scored row, with the figures None and a note that says why (never a NaN shown as a number).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shipyard.core.jsonsafe import finite_or_none
from shipyard.core.loss_model import LossModel
from shipyard.monitoring.dle import BAND_SAMPLING_ERRORS, MIN_ROWS, LossSummary
from shipyard.monitoring.json_reading import Fields

NO_LOSS_MODEL = (
    "unavailable: registered without training_target (or calibration_data and calibration_target), or with "
    f"fewer than {MIN_ROWS} labelled rows, so no loss model was fitted; register the regressor with labelled rows "
    "to estimate MAE and RMSE without labels"
)
NO_VERSION = "unavailable: the version is no longer in the registry"
NO_ROWS = "no served row was scored by the loss model in this range"


@dataclass(frozen=True, slots=True)
class LossFigure:
    """One estimated error figure: the estimate, its band (``low``, ``high``: three sampling errors, the low end
    clipped at zero), the realised value from labelled feedback, and the value on the loss model's own rows."""

    estimate: float | None = None
    sampling_error: float | None = None
    low: float | None = None
    high: float | None = None
    realised: float | None = None
    reference: float | None = None

    @property
    def difference(self) -> float | None:
        """Estimate minus realised once labels are in: positive means the estimate was too pessimistic."""
        if self.estimate is None or self.realised is None:
            return None
        return self.estimate - self.realised

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": finite_or_none(self.estimate),
            "sampling_error": finite_or_none(self.sampling_error),
            "low": finite_or_none(self.low),
            "high": finite_or_none(self.high),
            "realised": finite_or_none(self.realised),
            "difference": finite_or_none(self.difference),
            "reference": finite_or_none(self.reference),
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> LossFigure:
        return cls(
            estimate=fields.optional_number("estimate"),
            sampling_error=fields.optional_number("sampling_error"),
            low=fields.optional_number("low"),
            high=fields.optional_number("high"),
            realised=fields.optional_number("realised"),
            reference=fields.optional_number("reference"),
        )


@dataclass(frozen=True, slots=True)
class LossBasis:
    """What the loss model learnt from: which labelled rows (training or holdout) and how many."""

    data: str
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "rows": self.rows}


@dataclass(frozen=True, slots=True)
class LossEstimate:
    """A regressor's label-free MAE and RMSE (direct loss estimation) over the served rows of a range.

    ``rows`` were scored, ``unscored`` could not be (a prediction that is not a finite number); ``basis`` is
    None when the version has no loss model, and then ``note`` says why there is no estimate.
    """

    rows: int
    mae: LossFigure
    rmse: LossFigure
    basis: LossBasis | None = None
    unscored: int = 0
    note: str | None = None
    method: str = "dle"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "rows": self.rows,
            "unscored": self.unscored,
            "mae": self.mae.to_dict(),
            "rmse": self.rmse.to_dict(),
            "basis": self.basis.to_dict() if self.basis is not None else None,
            "note": self.note,
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> LossEstimate:
        basis = fields.optional_section("basis")
        return cls(
            rows=fields.integer("rows"),
            mae=LossFigure.from_fields(fields.section("mae")),
            rmse=LossFigure.from_fields(fields.section("rmse")),
            basis=LossBasis(basis.text("data"), basis.integer("rows")) if basis is not None else None,
            unscored=fields.integer("unscored"),
            note=fields.optional_text("note"),
            method=fields.text("method"),
        )


def estimate_loss(
    summary: LossSummary,
    model: LossModel | None,
    *,
    realised_mae: float | None = None,
    realised_rmse: float | None = None,
    unavailable: str = NO_LOSS_MODEL,
) -> LossEstimate:
    """MAE = mean estimated absolute error and RMSE = root of the mean estimated squared error over the scored
    rows, with NannyML's sampling errors: sd(|e|)/sqrt(n) for MAE and sqrt(sd(e^2)^2 / (4 n mean(e^2))) for
    RMSE, the spreads taken from the realised errors on the rows the loss model learnt from."""
    realised_mae, realised_rmse = finite_or_none(realised_mae), finite_or_none(realised_rmse)
    if model is None:
        return LossEstimate(0, LossFigure(realised=realised_mae), LossFigure(realised=realised_rmse), note=unavailable)
    reference = model.reference
    basis = LossBasis(model.data, model.rows)
    n = summary.rows
    if n == 0:
        return LossEstimate(
            0,
            LossFigure(realised=realised_mae, reference=reference.absolute_mean),
            LossFigure(realised=realised_rmse, reference=reference.rmse),
            basis,
            summary.unscored,
            NO_ROWS,
        )
    mae = summary.absolute_sum / n
    rmse = math.sqrt(max(0.0, summary.squared_sum) / n)
    mae_error = reference.absolute_sd / math.sqrt(n)
    rmse_error = (
        math.sqrt(reference.squared_sd**2 / (4 * n * reference.squared_mean)) if reference.squared_mean > 0 else 0.0
    )
    return LossEstimate(
        n,
        _figure(mae, mae_error, realised_mae, reference.absolute_mean),
        _figure(rmse, rmse_error, realised_rmse, reference.rmse),
        basis,
        summary.unscored,
    )


def _figure(estimate: float, error: float, realised: float | None, reference: float) -> LossFigure:
    half = BAND_SAMPLING_ERRORS * error
    return LossFigure(estimate, error, max(0.0, estimate - half), estimate + half, realised, reference)
