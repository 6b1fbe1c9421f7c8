"""Drift tests on profiles: the right features flagged, false alarms near alpha, figures as SciPy computes them."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from shipyard.core.profile import (
    OTHER,
    FeatureProfile,
    NumericProfile,
    ProfileBuilder,
    ReferenceProfile,
    build_reference_profile,
    categorical_profile,
    numeric_profile,
    profile_from_dict,
)
from shipyard.errors import InvalidArgumentError
from shipyard.monitoring.divergence import RARE, chi_square, js_distance, ks_test, wasserstein_binned
from shipyard.monitoring.drift import feature_drift, window_drift
from shipyard.monitoring.thresholds import DriftThresholds, FeatureThresholds

N_REF = 20_000
SHIFTED_NUMERIC = ("x03", "x11")
SHIFTED_CATEGORICAL = ("plan", "user_id")
PLANS = ("free", "basic", "pro", "team", "enterprise")
PLAN_P = (0.4, 0.3, 0.15, 0.1, 0.05)
ALPHA = 0.05


def _numeric_columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """20 features on different scales and shapes: normal, skewed, heavy-tailed, bounded, integer counts."""
    makers: list[Callable[[int], np.ndarray]] = [
        lambda k: rng.normal(0, 1, k),
        lambda k: rng.normal(1000, 250, k),
        lambda k: rng.exponential(3.0, k),
        lambda k: rng.lognormal(0, 0.8, k),
        lambda k: rng.uniform(-5, 5, k),
        lambda k: rng.poisson(4, k).astype(np.float64),
        lambda k: rng.standard_t(5, k),
        lambda k: rng.gamma(2.0, 0.01, k),
    ]
    return {f"x{i:02d}": makers[i % len(makers)](n) for i in range(20)}


def _frame(rng: np.random.Generator, n: int, *, shift: str | None = None) -> pd.DataFrame:
    columns: dict[str, object] = dict(_numeric_columns(rng, n))
    columns["plan"] = rng.choice(PLANS, n, p=PLAN_P)
    columns["user_id"] = np.char.add("u", rng.integers(0, 5000, n).astype(str))
    columns["country"] = rng.choice(["fr", "de", "es", "it"], n)
    columns["active"] = rng.random(n) < 0.7
    frame = pd.DataFrame(columns)
    if shift == "numeric":
        frame["x03"] = frame["x03"] + frame["x03"].std()  # a one-sigma move of a skewed feature
        frame["x11"] = (frame["x11"] - frame["x11"].mean()) * 2.5 + frame["x11"].mean()  # wider, same mean
    elif shift == "categorical":
        frame["plan"] = rng.choice(PLANS, n, p=(0.15, 0.2, 0.25, 0.25, 0.15))
        surge = rng.random(n) < 0.3  # one id, unseen in training, now sends 30% of the traffic
        frame.loc[surge, "user_id"] = "u-bot"
    return frame


@pytest.fixture(scope="module")
def reference() -> ReferenceProfile:
    return build_reference_profile(_frame(np.random.default_rng(0), N_REF))


def _live(reference: ReferenceProfile, frame: pd.DataFrame) -> dict[str, FeatureProfile]:
    builder = ProfileBuilder(reference)
    builder.add(frame)
    return builder.profiles()


def _flagged(result: object, test: str) -> set[str]:
    from shipyard.monitoring.drift_records import WindowDrift

    assert isinstance(result, WindowDrift)
    found = set()
    for item in result.features:
        stat = item.stat(test)  # type: ignore[arg-type]
        if stat is not None and stat.drifted:
            found.add(item.feature)
    return found


# --- the right features, by every test ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shift", "shifted", "tests"),
    [("numeric", SHIFTED_NUMERIC, ("psi", "ks", "wasserstein")), ("categorical", SHIFTED_CATEGORICAL, ("chi2", "js"))],
)
def test_shift_in_two_features_is_flagged_by_every_test_and_nothing_else_is(
    reference: ReferenceProfile, shift: str, shifted: tuple[str, ...], tests: tuple[str, ...]
) -> None:
    # Bonferroni over the 24 features: at alpha 0.05 each, one of 22 unshifted features would flag by
    # chance in two windows out of three. Effect sizes are not corrected and need not be.
    thresholds = DriftThresholds(correction="bonferroni")
    live = _live(reference, _frame(np.random.default_rng(1), 5_000, shift=shift))
    result = window_drift(reference, live, thresholds=thresholds)
    for test in (*tests, "psi" if shift == "categorical" else "js"):
        assert _flagged(result, test) == (set(shifted) if test in tests else set()), test
    assert result.drifted and set(result.drifted_features) == set(shifted)
    assert [f.feature for f in result.features[:2]] == sorted(shifted, key=lambda n: -result.feature(n).severity)

    small = window_drift(
        reference, _live(reference, _frame(np.random.default_rng(2), 400, shift=shift)), thresholds=thresholds
    )
    assert {f.test for f in small.features} == {"ks", "chi2"}  # p-values decide small windows
    assert set(small.drifted_features) == set(shifted)


@pytest.mark.parametrize("rows", [400, 5_000])
def test_the_same_data_without_a_shift_raises_nothing(reference: ReferenceProfile, rows: int) -> None:
    live = _live(reference, _frame(np.random.default_rng(3), rows))
    result = window_drift(reference, live, thresholds=DriftThresholds(correction="bonferroni"))
    assert not result.drifted and result.drifted_features == ()
    assert all(f.test is not None for f in result.features)
    assert not result.feature("user_id").drifted and result.feature("user_id").bins[-1] == RARE


def test_a_new_value_flooding_a_high_cardinality_column_is_named_and_flagged(reference: ReferenceProfile) -> None:
    frame = _frame(np.random.default_rng(4), 5_000, shift="categorical")
    live = _live(reference, frame)
    ids = window_drift(reference, live).feature("user_id")
    bot = ids.bins.index("u-bot")  # counted by name though training never saw it, not lost in __other__
    assert ids.reference_proportions[bot] == 0.0 and ids.live_proportions[bot] == pytest.approx(0.3, abs=0.02)
    assert ids.drifted and ids.bins[-1] == RARE and "__other__ grouped" in (ids.note or "")
    # Small windows too: 30 rows of 100 are a flood, although the pooled share is tiny.
    small = _live(reference, frame.iloc[:100])
    assert window_drift(reference, small).feature("user_id").drifted
    # Counted with every unseen value as __other__, the flood is invisible: __other__ barely grows, since
    # the new id takes traffic from the other ids in it. Hence live profiles name unseen values.
    levels = tuple(k for k in reference.features["user_id"].counts if k != OTHER)  # type: ignore[union-attr]
    as_other = dict(live, user_id=categorical_profile(frame["user_id"], levels))
    assert not window_drift(reference, as_other).feature("user_id").drifted


# --- false alarms -------------------------------------------------------------------------------------------


def test_false_alarm_rate_over_many_seeded_windows_stays_near_alpha() -> None:
    rng = np.random.default_rng(5)
    thirty = np.r_[np.full(10, 0.06), np.full(20, 0.02)]
    draw: dict[str, Callable[[int], np.ndarray]] = {
        "normal": lambda k: rng.normal(size=k),
        "skewed": lambda k: rng.exponential(size=k),
        "counts": lambda k: rng.poisson(3, k).astype(np.float64),
        "plan": lambda k: rng.choice(len(PLANS), k, p=PLAN_P),
        "thirty": lambda k: rng.choice(30, k, p=thirty),
    }
    levels = {"plan": list(PLANS), "thirty": [str(i) for i in range(30)]}
    dtypes = {name: pd.CategoricalDtype(categories) for name, categories in levels.items()}

    def columns(values: dict[str, np.ndarray]) -> dict[str, object]:
        return {n: pd.Categorical.from_codes(v, dtype=dtypes[n]) if n in dtypes else v for n, v in values.items()}

    reference = ProfileBuilder()
    reference.add(columns({name: make(N_REF) for name, make in draw.items()}))
    ref = reference.reference_profile()
    windows = 200
    for rows in (200, 5_000):
        data = {name: make(rows * windows) for name, make in draw.items()}
        alarms: dict[tuple[str, str], int] = {}
        window_alarms = 0
        for w in range(windows):
            builder = ProfileBuilder(ref)
            builder.add(columns({name: values[w * rows : (w + 1) * rows] for name, values in data.items()}))
            live = builder.profiles()
            # Each feature at its own alpha: what the window's correction starts from.
            for item in window_drift(ref, live, thresholds=DriftThresholds(correction="none")).features:
                for stat in item.stats:
                    alarms[(item.feature, stat.test)] = alarms.get((item.feature, stat.test), 0) + stat.drifted
            if rows < 1000:  # large windows are judged by effect sizes, which the correction leaves alone
                window_alarms += window_drift(ref, live, thresholds=DriftThresholds(correction="bonferroni")).drifted
        rates = {key: n / windows for key, n in alarms.items()}
        for (feature, test), rate in rates.items():
            # Effect sizes are held to the same bar where they decide (large windows) and are noise below.
            if test in ("ks", "chi2") or rows >= 1000:
                assert rate <= 2 * ALPHA, (rows, feature, test, rate)
        # Not dead either: the p-value tests do reject about alpha of the time (binned KS a little less).
        pooled = np.mean([rate for (_, test), rate in rates.items() if test in ("ks", "chi2")])
        assert ALPHA / 3 <= pooled <= 1.5 * ALPHA, (rows, pooled)
        assert window_alarms / windows <= 2 * ALPHA, (rows, window_alarms)


# --- the figures, against SciPy and the formulas ------------------------------------------------------------


def test_js_and_chi_square_equal_scipy_on_the_same_counts() -> None:
    rng = np.random.default_rng(6)
    for _ in range(20):
        k = int(rng.integers(2, 12))
        a, b = rng.integers(0, 500, k), rng.integers(0, 500, k)
        a[0] = b[0] = 0  # a level neither side saw
        assert js_distance(a, b) == pytest.approx(float(jensenshannon(a, b, base=2)), abs=1e-12)
        expected = stats.chi2_contingency(np.vstack([a, b])[:, 1:], correction=False)
        statistic, p_value = chi_square(a, b)
        assert statistic == pytest.approx(expected.statistic, rel=1e-10)
        assert p_value == pytest.approx(expected.pvalue, rel=1e-8, abs=1e-300)


def test_psi_equals_the_direct_formula_over_reference_deciles() -> None:
    rng = np.random.default_rng(7)
    for shift in (0.0, 0.3, 1.0):
        ref, live = rng.lognormal(size=N_REF), rng.lognormal(size=4_000) * (1 + shift)
        result = feature_drift("x", numeric_profile(ref, bins=100), numeric_profile(live, quantile_cuts(ref)))
        cuts = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
        expected = np.maximum(np.bincount(np.searchsorted(cuts, ref), minlength=10) / ref.size, 1e-4)
        actual = np.maximum(np.bincount(np.searchsorted(cuts, live), minlength=10) / live.size, 1e-4)
        assert result.scores["psi"] == pytest.approx(
            float(((actual - expected) * np.log(actual / expected)).sum()), rel=1e-6
        )


def quantile_cuts(values: np.ndarray) -> tuple[float, ...]:
    return numeric_profile(values, bins=100).edges


@pytest.mark.parametrize("shift", [0.0, 0.25, 1.0])
@pytest.mark.parametrize("shape", ["normal", "lognormal", "exponential", "uniform"])
def test_ks_and_wasserstein_agree_with_scipy_on_the_raw_rows(shape: str, shift: float) -> None:
    rng = np.random.default_rng(8)
    draw = getattr(rng, shape)
    ref, live = draw(size=N_REF), draw(size=5_000) + shift
    profile = numeric_profile(ref, bins=100)
    result = feature_drift("x", profile, numeric_profile(live, profile.edges))
    raw_ks = stats.ks_2samp(ref, live).statistic
    assert result.scores["ks"] == pytest.approx(raw_ks, abs=0.015)
    assert result.scores["ks"] <= raw_ks + 1e-12  # edges are a subset of the points SciPy compares at
    raw_w = stats.wasserstein_distance(ref, live)
    # Exact bin by bin from the sums; only where the CDFs cross inside a bin (noise, no shift) it is less.
    tolerance = 0.02 * raw_w if shift else 0.2 * raw_w
    assert result.scores["wasserstein_distance"] == pytest.approx(raw_w, abs=tolerance)
    assert result.scores["wasserstein"] == pytest.approx(result.scores["wasserstein_distance"] / ref.std(ddof=1))


def test_on_discrete_values_with_a_bin_each_ks_and_wasserstein_are_exact() -> None:
    rng = np.random.default_rng(9)
    edges = tuple(float(v) for v in range(25))
    for n_ref, n_live in ((5_000, 1_200), (N_REF, 3_000)):
        ref, live = rng.poisson(5, n_ref).astype(float), rng.poisson(5.15, n_live).astype(float)
        reference, current = numeric_profile(ref, edges), numeric_profile(live, edges)
        statistic, p_value = ks_test(reference.counts, current.counts)
        expected = stats.ks_2samp(ref, live, method="asymp")
        assert statistic == pytest.approx(expected.statistic, abs=1e-12)
        if n_ref * n_live / (n_ref + n_live) <= 1000:  # SciPy's formula itself
            assert p_value == pytest.approx(expected.pvalue, rel=1e-9)
        else:  # the limiting distribution: a little larger, never smaller
            assert expected.pvalue <= p_value <= expected.pvalue * 1.05
        assert wasserstein_binned(reference, current) == pytest.approx(stats.wasserstein_distance(ref, live), rel=1e-9)


# --- odd data never breaks it ------------------------------------------------------------------------------


def _json(value: object) -> str:
    return json.dumps(value, allow_nan=False)  # raises on NaN or infinity


def test_constant_columns_are_judged_without_nan() -> None:
    constant = numeric_profile(np.full(1_000, 3.0), bins=100)
    same = feature_drift("c", constant, numeric_profile(np.full(500, 3.0), constant.edges))
    assert not same.drifted and same.scores["wasserstein"] is None and same.scores["psi"] == 0.0
    moved = feature_drift("c", constant, numeric_profile(np.full(500, 4.0), constant.edges))
    assert moved.drifted and moved.flagged_by() == ("psi", "ks") and moved.scores["wasserstein_distance"] == 1.0
    wasserstein = FeatureThresholds(numeric_effect="wasserstein")
    large = feature_drift("c", constant, numeric_profile(np.full(5_000, 4.0), constant.edges), thresholds=wasserstein)
    assert large.test == "psi" and large.drifted and "constant" in (large.note or "")
    for item in (same, moved, large):
        _json(item.to_dict())


def test_empty_all_missing_and_tiny_windows_are_reported_not_raised(reference: ReferenceProfile) -> None:
    edges = reference.features["x00"].edges  # type: ignore[union-attr]
    cases = {
        "x00": numeric_profile(np.array([]), edges),
        "x01": numeric_profile(np.full(50, np.nan), reference.features["x01"].edges),  # type: ignore[union-attr]
        "x02": numeric_profile(np.ones(10), reference.features["x02"].edges),  # type: ignore[union-attr]
        "plan": categorical_profile([None] * 40, PLANS),
    }
    result = window_drift(reference, cases)
    notes = {f.feature: f.note for f in result.features}
    assert notes["x00"] == "no live values in this window"
    assert notes["x01"] == "all 50 live values are missing"
    assert notes["x02"] is not None and notes["x02"].startswith("not enough data: 10 live values")
    assert notes["plan"] == "all 40 live values are missing"
    assert notes["x05"] == "not in the live window"
    assert not result.drifted and result.features[0].test is None
    assert result.feature("x02").scores["psi"] is not None  # measured, not decided
    assert result.feature("x01").to_dict()["live"]["missing_share"] == 1.0
    _json(result.to_dict())

    all_missing = numeric_profile(np.full(100, np.nan))
    assert feature_drift("z", all_missing, numeric_profile(np.ones(100), all_missing.edges)).note == (
        "the reference has no values (100 missing)"
    )


def test_features_on_one_side_only_or_of_another_kind_get_a_note(reference: ReferenceProfile) -> None:
    live = _live(reference, _frame(np.random.default_rng(10), 2_000))
    live["brand_new"] = numeric_profile(np.arange(100.0))
    live["x04"] = categorical_profile(["a"] * 100)
    result = window_drift(reference, live)
    assert result.feature("brand_new").note == "no reference profile for this feature"
    assert result.feature("x04").note == "the reference profile is numeric but the live one is categorical"
    rebinned = numeric_profile(np.arange(100.0))
    assert "binned at" in (feature_drift("x", reference.features["x00"], rebinned).note or "")
    assert not result.drifted


def test_unseen_categories_are_counted_as_other_and_a_trickle_is_no_drift(reference: ReferenceProfile) -> None:
    frame = _frame(np.random.default_rng(11), 5_000)
    frame.loc[frame.index[:10], "country"] = "pt"  # 0.2% of rows, a level training never saw
    live = _live(reference, frame)
    assert live["country"].counts["pt"] == 10  # type: ignore[union-attr]
    assert categorical_profile(frame["country"], ("fr", "de", "es", "it")).counts[OTHER] == 10
    assert not window_drift(reference, live).feature("country").drifted
    frame.loc[frame.index[:2_000], "country"] = "pt"
    assert window_drift(reference, _live(reference, frame)).feature("country").drifted


def test_high_cardinality_ids_without_drift_are_not_flagged() -> None:
    rng = np.random.default_rng(12)
    ref = build_reference_profile(pd.DataFrame({"id": rng.integers(0, 5000, 200_000).astype(str)}))
    assert OTHER in ref.features["id"].counts  # type: ignore[union-attr]
    for rows in (100, 800, 5_000, 50_000):
        live = {"id": categorical_profile(rng.integers(0, 5000, rows).astype(str), tuple(ref.features["id"].counts))}  # type: ignore[union-attr]
        item = window_drift(ref, live).feature("id")
        assert not item.drifted and item.scores["js"] is not None and item.scores["js"] < 0.05, rows


def test_profiles_stored_before_fine_bins_and_sums_still_work() -> None:
    rng = np.random.default_rng(13)
    ref, live = rng.normal(size=N_REF), rng.normal(0.5, 1, 3_000)
    old = profile_from_dict({k: v for k, v in numeric_profile(ref).to_dict().items() if k != "sums"})
    assert isinstance(old, NumericProfile) and old.sums is None and len(old.counts) == 10
    result = feature_drift("x", old, numeric_profile(live, old.edges))
    assert result.drifted and result.test in ("psi", "wasserstein") and len(result.bins) == 10
    assert {"psi", "wasserstein"} <= set(result.flagged_by())
    assert result.scores["wasserstein_distance"] == pytest.approx(stats.wasserstein_distance(ref, live), rel=0.1)


# --- thresholds, the prediction, the result's shape ---------------------------------------------------------


def test_thresholds_are_overridden_per_feature_and_validated(reference: ReferenceProfile) -> None:
    live = _live(reference, _frame(np.random.default_rng(14), 5_000, shift="numeric"))
    relaxed = DriftThresholds(features={"x03": {"psi": 50.0, "wasserstein": 50.0}})
    assert window_drift(reference, live, thresholds=relaxed).drifted_features == ("x11",)
    assert relaxed.for_feature("x03").psi == 50.0 and relaxed.for_feature("x11").psi == 0.2
    assert DriftThresholds.from_dict(relaxed.to_dict()) == relaxed
    by_distance = window_drift(
        reference, live, thresholds=DriftThresholds(FeatureThresholds(numeric_effect="wasserstein"))
    )
    assert {f.test for f in by_distance.features if f.kind == "numeric"} == {"wasserstein"}
    assert set(by_distance.drifted_features) == set(SHIFTED_NUMERIC)
    with pytest.raises(InvalidArgumentError, match=r"unknown drift threshold 'psy' for feature 'x03'; known: alpha"):
        DriftThresholds(features={"x03": {"psy": 0.1}})
    with pytest.raises(InvalidArgumentError, match="alpha must be a probability"):
        FeatureThresholds(alpha=5)
    with pytest.raises(InvalidArgumentError, match="correction must be one of holm, bh, bonferroni, none"):
        DriftThresholds(correction="sidak")
    with pytest.raises(InvalidArgumentError, match=r"drift_share must be a fraction in \[0, 1\)"):
        DriftThresholds(drift_share=1.0)


def test_a_shifted_prediction_drifts_the_window_on_its_own() -> None:
    rng = np.random.default_rng(15)
    frame = pd.DataFrame({"x": rng.normal(size=N_REF)})
    reference = build_reference_profile(frame, predictions=rng.normal(size=N_REF))
    assert len(reference.prediction.counts) == 10  # type: ignore[union-attr]  # rollout gates' bins, unchanged
    assert len(reference.features["x"].counts) == 100  # type: ignore[union-attr]
    edges = reference.prediction.edges  # type: ignore[union-attr]
    live = _live(reference, pd.DataFrame({"x": rng.normal(size=3_000)}))
    result = window_drift(reference, live, numeric_profile(rng.normal(1.0, 1, 3_000), edges))
    assert result.drifted and result.drifted_features == () and result.prediction is not None
    assert result.prediction.feature == "prediction" and result.prediction.drifted
    assert result.to_dict()["prediction_drifted"] is True
    unjudged = window_drift(ReferenceProfile(10, {}), {}, numeric_profile([1.0, 2.0]))
    assert unjudged.prediction is not None and unjudged.prediction.note == "no reference profile for this feature"


def test_window_dict_is_json_and_lists_drifted_features_first(reference: ReferenceProfile) -> None:
    live = _live(reference, _frame(np.random.default_rng(16), 5_000, shift="numeric"))
    data = json.loads(_json(window_drift(reference, live).to_dict()))
    assert set(data) == {
        "drifted", "drifted_features", "prediction_drifted", "tested", "skipped", "correction", "features",
        "prediction", "drift_share", "drift_share_threshold", "dataset_drifted", "multivariate",
    }  # fmt: skip
    assert data["correction"] == "holm" and data["drift_share"] == 2 / 24 and not data["dataset_drifted"]
    first = data["features"][0]
    assert set(first) == {
        "feature", "kind", "test", "score", "threshold", "drifted", "severity", "p_value", "scores", "tests", "rows",
        "reference", "live", "note",
    }  # fmt: skip
    assert first["drifted"] and first["kind"] == "numeric" and first["test"] == "psi" and first["rows"] == 5_000
    assert set(first["scores"]) == {"psi", "ks", "ks_p_value", "wasserstein", "wasserstein_distance"}
    assert (
        len(first["reference"]["bins"]) == len(first["reference"]["proportions"]) == len(first["live"]["proportions"])
    )
    assert len(first["reference"]["edges"]) == len(first["reference"]["bins"]) - 1
    assert math.isclose(sum(first["reference"]["proportions"]), 1.0)
    drifted = [item["drifted"] for item in data["features"]]
    assert drifted == sorted(drifted, reverse=True) and sum(drifted) == 2
    scores = [item["score"] for item in data["features"] if not item["drifted"] and item["test"] == "psi"]
    assert scores == sorted(scores, reverse=True)
