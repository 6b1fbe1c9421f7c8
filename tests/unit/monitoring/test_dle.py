"""Direct loss estimation: the stored trees, the per-row errors, the window sums and the report's estimate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from shipyard.core.loss_model import LossModel, TreeEnsemble
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.dle import LEARNER, MIN_ROWS, LossScorer, LossSummary, fit_loss_model, loss_inputs
from shipyard.monitoring.json_reading import Fields
from shipyard.monitoring.loss_estimate import NO_LOSS_MODEL, NO_ROWS, LossEstimate, estimate_loss
from shipyard.monitoring.loss_trees import CompiledTrees, ensemble_from_sklearn
from shipyard.monitoring.window import WindowProfile

REGIONS = np.array(["north", "south", "east", "west"], dtype=object)


def _rows(n: int, *, seed: int, shift: float = 0.0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Features, a model's predictions and targets whose error grows with x1 > 0.5 and in the 'west' region."""
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=n), rng.normal(shift, 1.0, size=n)
    region = REGIONS[rng.integers(0, 4, size=n)]
    x0[rng.random(n) < 0.05] = np.nan
    region[rng.random(n) < 0.05] = None
    prediction = 2.0 * np.nan_to_num(x0) - x1
    noise_sd = 0.3 + 2.0 * (x1 > 0.5) + 1.0 * (region == "west")
    return {"x0": x0, "x1": x1, "region": region}, prediction, prediction + rng.normal(size=n) * noise_sd


@pytest.fixture(scope="module")
def fitted() -> LossModel:
    columns, prediction, target = _rows(3000, seed=0)
    return fit_loss_model(columns, prediction, target, categorical={"region"}, data="holdout")


def test_numpy_trees_equal_scikit_learns_predict_with_missing_values_and_categories() -> None:
    columns, prediction, target = _rows(3000, seed=1)
    features = fit_loss_model(columns, prediction, target, categorical={"region"}).features
    x = loss_inputs(features, columns, prediction)
    mask = np.array([False, False, True, False])
    learner = HistGradientBoostingRegressor(categorical_features=mask, **LEARNER).fit(x, np.abs(target - prediction))
    live_columns, live_prediction, _ = _rows(5000, seed=2, shift=1.5)
    live_columns["region"][:50] = "a level never seen"
    live = loss_inputs(features, live_columns, live_prediction)
    assert np.isnan(live[:50, 2]).all()  # an unseen level counts as missing
    ours = CompiledTrees(ensemble_from_sklearn(learner)).predict(live)
    np.testing.assert_allclose(ours, learner.predict(live), rtol=0, atol=1e-9)


def test_loss_model_survives_json_and_scores_the_same_after(fitted: LossModel) -> None:
    text = json.dumps(fitted.to_dict(), allow_nan=False)
    restored = LossModel.from_dict(json.loads(text))
    assert restored == fitted
    columns, prediction, _ = _rows(500, seed=3)
    before, after = LossScorer(fitted).errors(columns, prediction), LossScorer(restored).errors(columns, prediction)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert fitted.rows == 3000 and fitted.data == "holdout" and fitted.features[2].levels is not None
    assert set(fitted.features[2].levels) == set(REGIONS)


def test_a_malformed_stored_loss_model_is_refused_with_what_is_wrong(fitted: LossModel) -> None:
    data = fitted.to_dict()
    with pytest.raises(InvalidArgumentError, match="unknown loss model kind"):
        LossModel.from_dict({**data, "kind": "pickle"})
    with pytest.raises(InvalidArgumentError, match="malformed"):
        LossModel.from_dict({k: v for k, v in data.items() if k != "reference"})
    dangling = {**data["absolute"], "left": [10**6] * len(data["absolute"]["left"])}
    with pytest.raises(InvalidArgumentError, match="points at a node that does not exist"):
        TreeEnsemble.from_dict(dangling)
    with pytest.raises(InvalidArgumentError, match="data must be one of"):
        LossModel.from_dict({**data, "data": "validation"})


def test_homoscedastic_noise_is_estimated_as_its_mae_and_rmse() -> None:
    """Gaussian noise of sd 2 everywhere: MAE is 2 * sqrt(2 / pi) and RMSE 2 wherever the rows come from.

    Tolerance 5%: the loss model's own fitting noise plus the 20,000-row sample's (about 1%)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=4000)
    model = fit_loss_model({"x": x}, x, x + rng.normal(0, 2.0, 4000))
    live = rng.normal(1.0, 1.0, 20_000)
    estimate = estimate_loss(LossScorer(model).summary({"x": live}, live), model)
    assert estimate.mae.estimate == pytest.approx(2.0 * math.sqrt(2 / math.pi), rel=0.05)
    assert estimate.rmse.estimate == pytest.approx(2.0, rel=0.05)


def test_a_shift_into_the_noisy_region_raises_the_estimate_towards_the_realised_error(fitted: LossModel) -> None:
    """Tolerance 8%: measured 0.9-2.3% at 20,000 rows; the rest allows for the learnt noise levels' error."""
    scorer = LossScorer(fitted)
    steady, shifted = _rows(20_000, seed=5), _rows(20_000, seed=6, shift=1.5)
    estimates = []
    for columns, prediction, target in (steady, shifted):
        estimate = estimate_loss(scorer.summary(columns, prediction), fitted)
        assert estimate.mae.estimate == pytest.approx(np.abs(target - prediction).mean(), rel=0.08)
        assert estimate.rmse.estimate == pytest.approx(np.sqrt(np.square(target - prediction).mean()), rel=0.08)
        estimates.append(estimate)
    assert estimates[1].mae.estimate is not None and estimates[0].mae.estimate is not None
    assert estimates[1].mae.estimate > 1.5 * estimates[0].mae.estimate


def test_window_sums_merge_to_the_whole_and_old_windows_read_without_them(fitted: LossModel) -> None:
    scorer = LossScorer(fitted)
    columns, prediction, _ = _rows(900, seed=7)
    parts = [
        scorer.summary({k: v[i : i + 300] for k, v in columns.items()}, prediction[i : i + 300])
        for i in range(0, 900, 300)
    ]
    whole = scorer.summary(columns, prediction)
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.rows == whole.rows == 900
    assert merged.absolute_sum == pytest.approx(whole.absolute_sum, rel=1e-12)
    assert merged.squared_sum == pytest.approx(whole.squared_sum, rel=1e-12)
    window = WindowProfile(rows=900, loss=merged)
    assert WindowProfile.from_dict(json.loads(json.dumps(window.to_dict()))).loss == merged
    older = {k: v for k, v in window.to_dict().items() if k != "loss"}
    assert WindowProfile.from_dict(older).loss == LossSummary()


def test_rows_without_a_usable_prediction_are_counted_not_scored(fitted: LossModel) -> None:
    columns, prediction, _ = _rows(100, seed=8)
    prediction[:7] = np.nan
    columns["x1"] = columns["x1"].astype(object)
    columns["x1"][10:20] = "not a number"  # read as missing, as the trees read a missing value
    summary = LossScorer(fitted).summary(columns, prediction)
    assert (summary.rows, summary.unscored) == (93, 7)
    assert math.isfinite(summary.absolute_sum) and math.isfinite(summary.squared_sum)


def test_the_band_is_nannymls_three_sampling_errors(fitted: LossModel) -> None:
    summary = LossSummary(rows=400, absolute_sum=400 * 1.2, squared_sum=400 * 2.5)
    estimate = estimate_loss(summary, fitted, realised_mae=1.0, realised_rmse=float("nan"))
    spread = fitted.reference
    mae_error = spread.absolute_sd / math.sqrt(400)
    rmse_error = math.sqrt(spread.squared_sd**2 / (4 * 400 * spread.squared_mean))
    assert estimate.mae.estimate == pytest.approx(1.2) and estimate.rmse.estimate == pytest.approx(math.sqrt(2.5))
    assert estimate.mae.sampling_error == pytest.approx(mae_error)
    assert estimate.rmse.sampling_error == pytest.approx(rmse_error)
    assert estimate.mae.low == pytest.approx(max(0.0, 1.2 - 3 * mae_error))
    assert estimate.mae.high == pytest.approx(1.2 + 3 * mae_error)
    assert estimate.mae.difference == pytest.approx(0.2)
    assert estimate.rmse.realised is None and estimate.rmse.difference is None  # NaN is never shown as a number
    data = json.loads(json.dumps(estimate.to_dict(), allow_nan=False))
    assert LossEstimate.from_fields(Fields(data, "estimated_loss")) == estimate


def test_without_a_loss_model_or_rows_the_estimate_says_why(fitted: LossModel) -> None:
    none = estimate_loss(LossSummary(), None, realised_mae=2.0)
    assert none.note == NO_LOSS_MODEL and none.basis is None and none.mae.estimate is None
    assert none.mae.realised == 2.0
    empty = estimate_loss(LossSummary(unscored=3), fitted)
    assert empty.note == NO_ROWS and empty.rows == 0 and empty.unscored == 3 and empty.rmse.estimate is None
    assert empty.mae.reference == pytest.approx(fitted.reference.absolute_mean)


def test_fitting_refuses_what_it_cannot_learn_from() -> None:
    columns, prediction, target = _rows(MIN_ROWS + 5, seed=9)
    target[:10] = np.nan  # left out, as NannyML leaves them out: too few rows remain
    with pytest.raises(InvalidArgumentError, match=f"at least {MIN_ROWS} rows with a finite target"):
        fit_loss_model(columns, prediction, target, categorical={"region"})
    with pytest.raises(InvalidArgumentError, match="numeric target"):
        fit_loss_model(columns, prediction, np.array(["high"] * len(prediction)), categorical={"region"})
    with pytest.raises(InvalidArgumentError, match="the target has 3 values but there are"):
        fit_loss_model(columns, prediction, target[:3])
