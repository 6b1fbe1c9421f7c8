"""Summary statistics from profiles: exact moments, quantiles within one bin of NumPy's, constants, all-missing
features, and correlation changes that catch a relationship flipping while the marginals stay put."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.core.comoments import CoMoments, choose_features
from shipyard.core.profile import FEATURE_BINS, categorical_profile, numeric_profile
from shipyard.monitoring.correlations import correlation_changes
from shipyard.monitoring.quality_stats import (
    constant_features,
    feature_summary,
    histogram_quantile,
    summary_stats,
)


def test_moments_are_exact_and_quantiles_fall_within_their_bin() -> None:
    values = np.random.default_rng(0).lognormal(size=20_000)
    reference = numeric_profile(values, bins=FEATURE_BINS)
    stats = summary_stats(reference)
    assert stats.count == 20_000 and stats.missing == 0
    assert stats.mean == pytest.approx(values.mean(), rel=1e-12)
    assert stats.sd == pytest.approx(values.std(ddof=1), rel=1e-9)
    assert (stats.min, stats.max) == (values.min(), values.max())
    edges = np.concatenate(([values.min()], reference.edges, [values.max()]))
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        estimate = histogram_quantile(reference, q)
        truth = float(np.quantile(values, q))
        i = int(np.searchsorted(edges, truth))
        width = edges[min(i, edges.size - 1)] - edges[max(i - 1, 0)]
        # The stated method: off by at most the width of the bin the quantile falls in.
        assert estimate is not None and abs(estimate - truth) <= width


def test_live_quantiles_in_the_reference_bins_follow_a_shift() -> None:
    rng = np.random.default_rng(1)
    reference = numeric_profile(rng.normal(size=10_000), bins=FEATURE_BINS)
    live = numeric_profile(rng.normal(loc=0.5, size=10_000), reference.edges)
    summary = feature_summary("x", live, reference)
    assert summary.live is not None and summary.reference is not None
    assert summary.live.quantiles["p50"] == pytest.approx(0.5, abs=0.05)
    assert summary.reference.quantiles["p50"] == pytest.approx(0.0, abs=0.05)
    assert summary.note is None


def test_constant_and_all_missing_features_are_named_and_never_nan() -> None:
    constant = numeric_profile(np.full(100, 7.0))
    missing = numeric_profile(np.full(100, np.nan))
    one_level = categorical_profile(np.array(["a"] * 30 + [None] * 5, dtype=object))
    assert constant_features({"c": constant, "m": missing, "k": one_level}) == ("c", "k")
    stats = summary_stats(constant)
    assert stats.constant and stats.sd == 0.0 and stats.quantiles["p50"] == 7.0
    summary = feature_summary("m", missing, numeric_profile(np.arange(10.0)))
    assert summary.note == "all 100 values are missing: no statistics"
    assert summary.live is not None and summary.live.mean is None
    assert all(v is None for v in summary.live.to_dict()["quantiles"].values())
    level = summary_stats(one_level)
    assert (level.distinct, level.top, level.top_share, level.missing) == (1, "a", 1.0, 5)


def test_a_missing_side_or_a_changed_kind_is_said_in_the_note() -> None:
    numbers = numeric_profile(np.arange(10.0))
    words = categorical_profile(np.array(["a", "b"], dtype=object))
    assert feature_summary("x", None, numbers).note == "no live values for this feature"
    assert feature_summary("x", numbers, None).note == "no reference profile for this feature"
    assert "different kinds" in (feature_summary("x", words, numbers).note or "")


def _moments(frame: pd.DataFrame, like: CoMoments | None = None) -> CoMoments:
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    if like is None:
        names, means = choose_features(columns)
        like = CoMoments.empty(names, means)
    return like.like().add(columns)


def test_a_flipped_correlation_is_reported_while_unrelated_pairs_are_not() -> None:
    rng = np.random.default_rng(2)
    n = 5000
    x = rng.normal(size=n)
    reference = pd.DataFrame({"x": x, "y": 0.9 * x + 0.44 * rng.normal(size=n), "z": rng.normal(size=n)})
    x2 = rng.normal(size=n)
    live = pd.DataFrame({"x": x2, "y": -0.9 * x2 + 0.44 * rng.normal(size=n), "z": rng.normal(size=n)})
    ref = _moments(reference)
    changes = correlation_changes(ref, _moments(live, ref))
    assert changes is not None and changes.pairs == 3
    assert [(c.a, c.b) for c in changes.changed] == [("x", "y")]
    assert changes.changed[0].change == pytest.approx(-1.8, abs=0.05)
    same = correlation_changes(ref, _moments(reference.sample(frac=1.0, random_state=3), ref))
    assert same is not None and same.changed == ()


def test_correlations_say_why_when_they_cannot_be_compared() -> None:
    assert correlation_changes(None, None) is None
    ref = CoMoments.empty(("x", "y"), (0.0, 0.0)).add({"x": np.arange(10.0), "y": np.arange(10.0) ** 2})
    empty = correlation_changes(ref, ref.like())
    assert empty is not None and empty.note == "no live rows with every tracked feature present"
    flat = correlation_changes(ref, ref.like().add({"x": np.ones(10), "y": np.arange(10.0)}))
    assert flat is not None and flat.undefined == ("x ~ y",) and flat.changed == ()
    assert "undefined" in (flat.note or "")
