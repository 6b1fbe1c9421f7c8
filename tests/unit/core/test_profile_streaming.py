"""ProfileBuilder: chunk by chunk gives the profile of the whole, in memory that does not grow with rows."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from shipyard.core.profile import (
    FEATURE_BINS,
    OTHER,
    CategoricalProfile,
    NumericProfile,
    ProfileBuilder,
    ReferenceProfile,
    build_reference_profile,
    categorical_profile,
    numeric_profile,
    profile_from_dict,
    quantile_edges,
)


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    x = rng.lognormal(size=n)
    x[rng.random(n) < 0.01] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.poisson(3, n),
            "plan": rng.choice(["free", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
            "flag": rng.random(n) < 0.2,
        }
    )


def _chunks(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def test_chunked_profiles_equal_the_whole_counted_at_once() -> None:
    rng = np.random.default_rng(0)
    reference = build_reference_profile(_frame(rng, 20_000))
    live = _frame(rng, 10_000)
    builder = ProfileBuilder(reference)
    for chunk in _chunks(live, 1_337):
        builder.add(chunk)
    profiles = builder.profiles()
    assert builder.rows == 10_000
    edges = reference.features["x"].edges  # type: ignore[union-attr]
    whole = numeric_profile(live["x"], edges)
    x = profiles["x"]
    assert isinstance(x, NumericProfile) and x.counts == whole.counts and x.missing == whole.missing
    assert x.sums == pytest.approx(whole.sums)
    assert (x.mean, x.variance, x.min, x.max) == pytest.approx((whole.mean, whole.variance, whole.min, whole.max))
    plan = profiles["plan"]
    assert isinstance(plan, CategoricalProfile) and plan.counts == dict(live["plan"].value_counts())
    assert profiles["flag"].counts == {"False": int((~live["flag"]).sum()), "True": int(live["flag"].sum())}  # type: ignore[union-attr]


def test_without_a_reference_the_first_chunk_fixes_the_bins_and_levels() -> None:
    rng = np.random.default_rng(1)
    frame = _frame(rng, 12_000)
    frame.loc[frame.index[6_000:], "plan"] = "enterprise"  # a level the first chunk never showed
    builder = ProfileBuilder()
    for chunk in _chunks(frame, 4_000):
        builder.add(chunk)
    reference = builder.reference_profile()
    x = reference.features["x"]
    assert isinstance(x, NumericProfile)
    assert x.edges == quantile_edges(frame["x"].to_numpy()[:4_000], FEATURE_BINS) and len(x.edges) == FEATURE_BINS - 1
    assert x.count + x.missing == 12_000
    plan = reference.features["plan"]
    assert isinstance(plan, CategoricalProfile) and plan.counts[OTHER] == 6_000 and "enterprise" not in plan.counts
    assert reference.rows == 12_000 and ReferenceProfile.from_dict(reference.to_dict()) == reference


def test_a_first_chunk_with_no_values_does_not_fix_the_bins() -> None:
    builder = ProfileBuilder()
    builder.add({"x": np.full(100, np.nan)})
    builder.add({"x": np.arange(1_000.0)})
    x = builder.profiles()["x"]
    assert isinstance(x, NumericProfile) and len(x.edges) == FEATURE_BINS - 1 and x.missing == 100 and x.count == 1_000


def test_categoricals_booleans_and_objects_count_alike() -> None:
    rng = np.random.default_rng(2)
    values = rng.choice(["a", "b", "c"], 5_000).astype(object)
    values[::50] = None
    as_objects = categorical_profile(values)
    assert categorical_profile(pd.Categorical(values)) == as_objects
    assert categorical_profile(pd.Series(values, dtype="category")) == as_objects
    flags = rng.random(1_000) < 0.3
    assert categorical_profile(flags) == categorical_profile(flags.astype(object))


def test_live_windows_name_the_most_frequent_unseen_values_in_bounded_memory() -> None:
    rng = np.random.default_rng(3)
    reference = ReferenceProfile(100, {"id": CategoricalProfile({"a": 60, "b": 40})})
    builder = ProfileBuilder(reference, unseen_levels=5)
    for _ in range(40):  # 40 chunks of fresh one-off ids, and one value that keeps coming back
        ids = np.char.add("new-", rng.integers(0, 10**9, 1_000).astype(str)).astype(object)
        ids[:100] = "bot"
        ids[100:400] = "a"
        builder.add({"id": ids})
        assert len(builder._columns["id"].unseen) <= 4 * 5  # type: ignore[union-attr]
    counts = builder.profiles()["id"].counts  # type: ignore[union-attr]
    assert counts["bot"] == 4_000 and counts["a"] == 12_000 and len(counts) == 1 + 5 + 1
    assert sum(counts.values()) == 40_000
    assert categorical_profile(["x", "y", "y"], ("x",), unseen_levels=1).counts == {"x": 1, "y": 2}
    assert categorical_profile(["x", "y", "y"], ("x",)).counts == {"x": 1, OTHER: 2}


def test_memory_follows_the_chunk_not_the_row_count() -> None:
    rng = np.random.default_rng(4)
    chunk = {"a": rng.normal(size=100_000), "b": rng.exponential(size=100_000), "c": rng.integers(0, 50, 100_000)}
    peaks = []
    for chunks in (2, 12):
        builder = ProfileBuilder()
        tracemalloc.start()
        for _ in range(chunks):
            builder.add(chunk)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert builder.rows == chunks * 100_000
    assert peaks[1] <= peaks[0] * 1.1, peaks


def test_sums_round_trip_and_profiles_stored_without_them_still_load_and_merge() -> None:
    profile = numeric_profile(np.arange(10.0), bins=4)
    assert profile.sums is not None and sum(profile.sums) == 45.0
    assert profile_from_dict(profile.to_dict()) == profile
    old = profile_from_dict({k: v for k, v in profile.to_dict().items() if k != "sums"})
    assert isinstance(old, NumericProfile) and old.sums is None and "sums" not in old.to_dict()
    assert old.merge(profile).sums is None and old.merge(profile).counts == tuple(2 * c for c in profile.counts)


def test_dates_are_epoch_seconds_whatever_their_resolution_and_text_in_a_numeric_column_is_missing() -> None:
    stamps = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", None]))
    for series in (stamps, stamps.astype("datetime64[s]"), stamps.dt.tz_localize("UTC")):
        profile = build_reference_profile(pd.DataFrame({"t": series})).features["t"]
        assert isinstance(profile, NumericProfile) and (profile.min, profile.max, profile.missing) == (
            1704067200.0,
            1704153600.0,
            1,
        )
    builder = ProfileBuilder(ReferenceProfile(3, {"x": numeric_profile([1.0, 2.0, 3.0])}))
    builder.add({"x": np.array(["1.5", "oops", None], dtype=object)})
    x = builder.profiles()["x"]
    assert isinstance(x, NumericProfile) and x.count == 1 and x.missing == 2


def test_chunk_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match=r"chunk columns differ in length: \[2, 3\]"):
        ProfileBuilder().add({"a": np.ones(3), "b": np.ones(2)})
