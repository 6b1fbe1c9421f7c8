"""Profiles are mergeable: merging window profiles equals profiling the concatenated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.core.profile import (
    OTHER,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_reference_profile,
    categorical_profile,
    numeric_profile,
    quantile_edges,
)


def test_quantile_bins_hold_about_equal_counts() -> None:
    values = np.random.default_rng(0).normal(size=10_000)
    profile = numeric_profile(values)
    assert len(profile.counts) == 10
    assert all(abs(c - 1000) <= 2 for c in profile.counts)
    assert profile.mean == pytest.approx(values.mean())
    assert profile.variance == pytest.approx(values.var(ddof=1))


def test_constant_and_empty_columns_do_not_break() -> None:
    constant = numeric_profile(np.full(50, 3.0))
    assert constant.edges == (3.0,) and constant.count == 50
    empty = numeric_profile(np.array([np.nan, np.nan]))
    assert empty.count == 0 and empty.missing == 2


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
)
def test_merging_two_windows_equals_profiling_both_at_once(a: list[float], b: list[float]) -> None:
    edges = quantile_edges(np.asarray(a + b))
    merged = numeric_profile(a, edges).merge(numeric_profile(b, edges))
    whole = numeric_profile(a + b, edges)
    assert merged.counts == whole.counts
    assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-6)
    assert merged.m2 == pytest.approx(whole.m2, rel=1e-6, abs=1e-3)
    assert (merged.min, merged.max) == (whole.min, whole.max)


def test_empty_profile_is_the_identity_of_merge() -> None:
    p = numeric_profile([1.0, 2.0, 3.0])
    assert NumericProfile.empty(p.edges).merge(p) == p
    c = categorical_profile(["a", "b", "a"])
    assert CategoricalProfile.empty().merge(c).counts == c.counts


def test_unknown_levels_are_counted_as_other() -> None:
    profile = categorical_profile(["a", "b", "zzz", None], levels=("a", "b"))
    assert profile.counts == {"a": 1, "b": 1, OTHER: 1} and profile.missing == 1


def test_reference_profile_round_trips_through_json_form() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "c": ["a", "b", "a", None], "flag": [True, False, True, True]})
    profile = build_reference_profile(
        frame,
        predictions=np.array([0, 1, 1, 0]),
        classification=True,
        scores=np.array([0.1, 0.9, 0.8, 0.3]),
        target=np.array([0, 1, 1, 1]),
    )
    assert ReferenceProfile.from_dict(profile.to_dict()) == profile
    assert profile.features["x"].missing == 1  # type: ignore[union-attr]
    assert profile.prediction.counts == {"0": 2, "1": 2}  # type: ignore[union-attr]
