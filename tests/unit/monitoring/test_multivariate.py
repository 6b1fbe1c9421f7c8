"""Multivariate drift: a correlation that flips with every marginal unchanged is caught by the PCA
reconstruction error and the domain classifier, and missed by the per-feature tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.core.profile import ProfileBuilder, ReferenceProfile, build_reference_profile, numeric_profile
from shipyard.monitoring.drift import window_drift
from shipyard.monitoring.json_reading import Fields, window_drift_from_dict
from shipyard.monitoring.multivariate import (
    domain_classifier_drift,
    fit_reconstruction,
    missing_reason,
    multivariate_drift,
    reconstruction_errors,
    with_multivariate,
)
from shipyard.monitoring.thresholds import DriftThresholds
from shipyard.monitoring.window import WindowProfile


def correlated(n: int, rho: float, seed: int) -> pd.DataFrame:
    """x and y with correlation ``rho`` and the same marginals whatever its sign, beside two independent columns."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": 10 + 2 * x,
            "y": -3 + 0.5 * y,
            "z": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        }
    )


REFERENCE = correlated(5000, 0.9, seed=0)


@pytest.fixture(scope="module")
def reference() -> ReferenceProfile:
    profile = build_reference_profile(REFERENCE)
    model = fit_reconstruction(REFERENCE)
    assert model is not None
    return ReferenceProfile(profile.rows, profile.features, multivariate=model)


def judged(reference: ReferenceProfile, live: pd.DataFrame) -> tuple[tuple[str, ...], bool]:
    """(features the per-feature tests flag, whether the multivariate test flags) for one live window."""
    builder = ProfileBuilder(reference)
    builder.add(live)
    assert reference.multivariate is not None
    errors = reconstruction_errors(reference.multivariate, {name: live[name].to_numpy() for name in live.columns})
    window = with_multivariate(
        window_drift(reference, builder.profiles()),
        reference,
        numeric_profile(errors, reference.multivariate.errors.edges),
        DriftThresholds(),
    )
    assert window.multivariate is not None
    return window.drifted_features, window.multivariate.drifted


def test_flipped_correlation_is_flagged_only_by_multivariate_drift(reference: ReferenceProfile) -> None:
    per_feature, multivariate = judged(reference, correlated(800, -0.9, seed=1))
    assert per_feature == ()
    assert multivariate


def test_a_window_without_drift_is_not_flagged(reference: ReferenceProfile) -> None:
    # KS at alpha 0.05 flags a window without drift 5% of the time; over 20 seeded windows at most 3 flags
    # (binomial(20, 0.05) exceeds 3 with probability 1.6%), and none of them through the per-feature tests.
    flags = [judged(reference, correlated(500, 0.9, seed=100 + i))[1] for i in range(20)]
    assert sum(flags) <= 3


def test_the_pca_keeps_the_components_for_65_percent_of_the_variance(reference: ReferenceProfile) -> None:
    model = reference.multivariate
    assert model is not None
    # Standardised x, y with corr 0.9 give eigenvalues 1.9 and 0.1; z and the colour code about 1 each:
    # 1.9 alone is under 65% of 4, 1.9 + 1 is over it.
    assert len(model.components) == 2
    assert 0.65 <= model.variance_kept < 0.8
    assert model.columns == ("x", "y", "z", "colour")
    assert model.errors.count == len(REFERENCE)


def test_live_rows_with_missing_values_and_unseen_categories_get_finite_errors(reference: ReferenceProfile) -> None:
    assert reference.multivariate is not None
    columns = {
        "x": np.array([10.0, np.nan, 1e308]),
        "y": np.array([-3.0, -3.0, -3.0]),
        "colour": np.array(["red", None, "purple"], dtype=object),
    }  # z is not sent at all: it counts as missing
    errors = reconstruction_errors(reference.multivariate, columns)
    assert errors.shape == (3,)
    assert np.isfinite(errors).all()


def test_the_stored_pca_survives_json_and_old_profiles_without_it_still_read(reference: ReferenceProfile) -> None:
    data = json.loads(json.dumps(reference.to_dict()))
    again = ReferenceProfile.from_dict(data)
    assert again.multivariate == reference.multivariate
    del data["multivariate"]
    old = ReferenceProfile.from_dict(data)
    assert old.multivariate is None
    result = multivariate_drift(None, None, why_missing=missing_reason(old))
    assert not result.drifted
    assert result.note is not None and "registered before multivariate drift" in result.note


def test_window_errors_merge_across_workers_like_one_window(reference: ReferenceProfile) -> None:
    assert reference.multivariate is not None
    edges = reference.multivariate.errors.edges
    live = correlated(600, -0.9, seed=3)
    errors = reconstruction_errors(reference.multivariate, {n: live[n].to_numpy() for n in live.columns})
    a = WindowProfile(rows=300, reconstruction=numeric_profile(errors[:300], edges))
    b = WindowProfile(rows=300, reconstruction=numeric_profile(errors[300:], edges))
    merged = WindowProfile.from_dict(json.loads(json.dumps(a.merge(b).to_dict())))
    whole = numeric_profile(errors, edges)
    assert merged.reconstruction is not None
    assert merged.reconstruction.counts == whole.counts
    assert merged.reconstruction.mean == pytest.approx(whole.mean, rel=1e-12)
    assert WindowProfile.from_dict({"rows": 3}).reconstruction is None  # a window stored before it


def test_the_drift_section_round_trips_through_the_report_json(reference: ReferenceProfile) -> None:
    live = correlated(400, -0.9, seed=4)
    builder = ProfileBuilder(reference)
    builder.add(live)
    assert reference.multivariate is not None
    errors = reconstruction_errors(reference.multivariate, {n: live[n].to_numpy() for n in live.columns})
    window = with_multivariate(
        window_drift(reference, builder.profiles()),
        reference,
        numeric_profile(errors, reference.multivariate.errors.edges),
        DriftThresholds(),
    )
    data = json.loads(json.dumps(window.to_dict()))
    assert data["drifted"] is True and data["drifted_features"] == []
    section = data["multivariate"]
    assert section["test"] == "ks" and section["outside_band"] is True
    assert section["lower"] < section["reference_mean"] < section["upper"] < section["live_mean"]
    assert window_drift_from_dict(Fields(data, "drift")) == window


def test_too_few_varying_features_fit_no_pca_and_say_why() -> None:
    frame = pd.DataFrame({"x": np.arange(50.0), "constant": np.ones(50), "empty": [None] * 50})
    assert fit_reconstruction(frame) is None
    note = missing_reason(build_reference_profile(frame))
    assert "1 feature(s) that vary" in note


def test_domain_classifier_separates_a_flipped_correlation_and_not_a_same_distribution_sample() -> None:
    # 2,000 rows a side: the flip gives an AUC near 0.9; a same-distribution sample stays near 0.5 and
    # under the permutation threshold (its p-value is uniform: a 5% chance of a false flag per seed).
    drifted = domain_classifier_drift(REFERENCE, correlated(2000, -0.9, seed=5), max_rows=4000)
    assert drifted.verdict == "drift" and drifted.auc is not None and drifted.auc > 0.8
    assert drifted.p_value is not None and drifted.p_value < 0.01
    same = domain_classifier_drift(REFERENCE, correlated(2000, 0.9, seed=6), max_rows=4000)
    assert same.verdict == "no drift"
    assert same.auc is not None and abs(same.auc - 0.5) < 0.05
    assert same.threshold is not None and 0.5 < same.threshold < 0.55
    assert same.reference_rows == 2000 and same.current_rows == 2000
    assert json.loads(json.dumps(same.to_dict()))["verdict"] == "no drift"


def test_domain_classifier_reports_bad_input_instead_of_raising() -> None:
    empty = domain_classifier_drift(REFERENCE, REFERENCE.iloc[:0])
    assert empty.verdict == "not computed" and empty.note == "the current data has no rows"
    other = domain_classifier_drift(REFERENCE[["x"]], pd.DataFrame({"w": [1.0, 2.0]}))
    assert other.verdict == "not computed"
    assert other.left_out == {"x": "only in the reference", "w": "only in the current data"}
    few = domain_classifier_drift(REFERENCE, REFERENCE.iloc[:5])
    assert few.verdict == "not computed" and few.note is not None and "too few rows" in few.note
    changed = REFERENCE.iloc[:500].assign(x=lambda f: f["x"].astype(str))
    typed = domain_classifier_drift(REFERENCE.iloc[500:1000], changed)
    assert typed.left_out["x"] == "numeric on one side, text on the other: compared as text"
    assert typed.auc is not None
