"""Drift of a live window against a version's reference profile, per feature and for the prediction.

Both sides are profiles counted in the reference's bins (``shipyard.core.profile``), so every test runs
on counts, never on raw rows: judging a window of a million rows costs what a window of a hundred does.

Every measure that applies is computed and reported:

- numbers: PSI over about ten groups of fine bins holding equal reference mass; Kolmogorov-Smirnov on
  the fine bins' CDFs (the statistic is at most one fine bin's mass below SciPy's on the raw rows, and the
  p-value is SciPy's asymptotic one, or its limit for large samples); Wasserstein-1 from the binned CDFs
  and per-bin sums, and the same divided by the reference's standard deviation, so that one threshold fits
  every scale.
- categories: chi-square on the 2 x k table and Jensen-Shannon distance (base 2), after rare levels are
  folded into one ``__rare__`` group, so a column of thousands of ids does not read as drift (a level
  flooding live traffic is never folded away).

One of them decides, by the size of the live window (the "default test"). Below ``large_window_rows``
live values (1,000 by default) a p-value decides, KS for numbers and chi-square for categories, at
``alpha``: effect sizes on small samples mostly measure sampling noise (PSI's floor is about
(bins - 1)(1/n_ref + 1/n_live)). From 1,000 values on an effect size decides, PSI > 0.2 or normalised
Wasserstein > 0.1 for numbers (whichever is further past its threshold decides) and JS > 0.1 for
categories: with tens of thousands of rows every p-value is tiny, and differences too small to matter
would raise alarms. Evidently follows the same rule of thumb. PSI alone would miss a standard deviation
grown by half (0.194 over ten deciles); Wasserstein alone reads a heavy tail's shift less than PSI does.

A window tests many features at once, so its p-values are corrected (Holm by default, see
``DriftThresholds``): without it, 30 features at alpha 0.05 flag a window without drift a third of the
time. Beside that verdict stands the dataset-level one: the share of tested features that drifted against
``drift_share``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import cast

import numpy as np

from shipyard.core.histograms import psi as psi_of_counts
from shipyard.core.profile import OTHER, CategoricalProfile, FeatureProfile, NumericProfile, ReferenceProfile
from shipyard.monitoring.divergence import (
    RARE,
    chi_square,
    folded_levels,
    interval_labels,
    js_distance,
    ks_test,
    mass_groups,
    wasserstein_binned,
)
from shipyard.monitoring.drift_records import FeatureDrift, Kind, StatResult, StatTest, WindowDrift
from shipyard.monitoring.thresholds import DriftThresholds, FeatureThresholds, correction_factor

PREDICTION = "prediction"


# --- one feature ------------------------------------------------------------------------------------------


def _kind(profile: FeatureProfile) -> Kind:
    return "numeric" if isinstance(profile, NumericProfile) else "categorical"


def _missing_share(profile: FeatureProfile | None) -> float | None:
    if profile is None:
        return None
    total = profile.count + profile.missing
    return profile.missing / total if total else None


def _incompatible(reference: FeatureProfile | None, live: FeatureProfile | None) -> str | None:
    """Why the two profiles cannot be compared at all, or None when they can."""
    if reference is None:
        return "no reference profile for this feature"
    if live is None:
        return "not in the live window"
    if _kind(reference) != _kind(live):
        return f"the reference profile is {_kind(reference)} but the live one is {_kind(live)}"
    if isinstance(reference, NumericProfile) and isinstance(live, NumericProfile) and reference.edges != live.edges:
        return (
            f"live values were binned at {len(live.edges)} cuts, the reference at {len(reference.edges)}: "
            "profile live windows with the reference's edges"
        )
    if reference.count == 0:
        return f"the reference has no values ({reference.missing} missing)"
    if live.count == 0:
        return f"all {live.missing} live values are missing" if live.missing else "no live values in this window"
    return None


def _too_few(live: FeatureProfile, thresholds: FeatureThresholds) -> str | None:
    if live.count < thresholds.min_rows:
        return f"not enough data: {live.count} live values, tests need at least {thresholds.min_rows}"
    return None


def _numeric_drift(
    name: str, reference: NumericProfile, live: NumericProfile, thresholds: FeatureThresholds, alpha: float
) -> FeatureDrift:
    r = np.asarray(reference.counts, dtype=np.float64)
    lv = np.asarray(live.counts, dtype=np.float64)
    groups = mass_groups(r, thresholds.psi_groups)
    r_grouped, l_grouped = np.bincount(groups, weights=r), np.bincount(groups, weights=lv)
    psi = psi_of_counts(r_grouped, l_grouped)
    ks, ks_p = ks_test(r, lv)
    distance = wasserstein_binned(reference, live)
    std = math.sqrt(reference.variance)
    normalised = distance / std if distance is not None and std > 0 else None
    stats = [
        StatResult("psi", psi, thresholds.psi, None, psi > thresholds.psi),
        StatResult("ks", ks, alpha, ks_p, ks_p < alpha),
    ]
    if normalised is not None:
        stats.append(
            StatResult("wasserstein", normalised, thresholds.wasserstein, None, normalised > thresholds.wasserstein)
        )
    note = _too_few(live, thresholds)
    test: StatTest | None = None
    if note is None:
        effect = thresholds.numeric_effect
        if live.count < thresholds.large_window_rows:
            test = "ks"
        elif effect == "psi_or_wasserstein":
            # Either one past its threshold drifts the feature; the one further past it is reported.
            test = max(stats[2:] + stats[:1], key=lambda s: s.severity).test  # Wasserstein first on ties
        elif effect == "wasserstein" and normalised is None:
            test, note = "psi", "the reference is constant, so Wasserstein cannot be normalised: PSI decides"
        else:
            test = cast(StatTest, effect)
    # Group boundaries: the fine edge after the last bin of every group but the last.
    last_bins = np.flatnonzero(np.diff(groups)) if groups.size > 1 else np.array([], dtype=np.int64)
    cuts = [float(reference.edges[i]) for i in last_bins]
    decided = next((s for s in stats if s.test == test), None)
    return FeatureDrift(
        feature=name,
        kind="numeric",
        test=test,
        drifted=bool(decided and decided.drifted),
        rows=live.count,
        stats=tuple(stats),
        scores={
            "psi": psi,
            "ks": ks,
            "ks_p_value": ks_p,
            "wasserstein": normalised,
            "wasserstein_distance": distance,
        },
        bins=interval_labels(cuts),
        edges=tuple(cuts),
        reference_proportions=tuple(float(v) for v in r_grouped / r_grouped.sum()),
        live_proportions=tuple(float(v) for v in l_grouped / l_grouped.sum()),
        reference_missing_share=_missing_share(reference),
        live_missing_share=_missing_share(live),
        note=note,
    )


def _categorical_drift(
    name: str, reference: CategoricalProfile, live: CategoricalProfile, thresholds: FeatureThresholds, alpha: float
) -> FeatureDrift:
    labels, r, lv = folded_levels(reference, live, thresholds)
    chi2, chi2_p = chi_square(r, lv)
    js = js_distance(r, lv)
    stats = (
        StatResult("chi2", chi2, alpha, chi2_p, chi2_p < alpha),
        StatResult("js", js, thresholds.js, None, js > thresholds.js),
    )
    note = _too_few(live, thresholds)
    test: StatTest | None = None
    if note is None:
        test = "chi2" if live.count < thresholds.large_window_rows else "js"
    if RARE in labels and note is None:
        kept = set(labels)
        folded = [level for level in reference.counts.keys() | live.counts.keys() if level not in kept]
        unseen = f" and {OTHER}" if OTHER in folded else ""
        note = f"{len(folded) - bool(unseen)} rare levels{unseen} grouped as {RARE}"
    decided = next((s for s in stats if s.test == test), None)
    return FeatureDrift(
        feature=name,
        kind="categorical",
        test=test,
        drifted=bool(decided and decided.drifted),
        rows=live.count,
        stats=stats,
        scores={"chi2": chi2, "chi2_p_value": chi2_p, "js": js},
        bins=labels,
        reference_proportions=tuple(float(v) for v in r / r.sum()),
        live_proportions=tuple(float(v) for v in lv / lv.sum()),
        reference_missing_share=_missing_share(reference),
        live_missing_share=_missing_share(live),
        note=note,
    )


def _feature_drift(
    name: str,
    reference: FeatureProfile | None,
    live: FeatureProfile | None,
    thresholds: FeatureThresholds,
    alpha: float,
) -> FeatureDrift:
    reason = _incompatible(reference, live)
    if reason is not None:
        known = reference if reference is not None else live
        return FeatureDrift(
            feature=name,
            kind=_kind(known) if known is not None else "numeric",
            test=None,
            drifted=False,
            rows=live.count if live is not None else 0,
            reference_missing_share=_missing_share(reference),
            live_missing_share=_missing_share(live),
            note=reason,
        )
    if isinstance(reference, NumericProfile) and isinstance(live, NumericProfile):
        return _numeric_drift(name, reference, live, thresholds, alpha)
    return _categorical_drift(
        name, cast(CategoricalProfile, reference), cast(CategoricalProfile, live), thresholds, alpha
    )


def feature_drift(
    name: str,
    reference: FeatureProfile | None,
    live: FeatureProfile | None,
    *,
    thresholds: FeatureThresholds | None = None,
) -> FeatureDrift:
    """Drift of one feature's live profile against its reference profile; never raises on odd data."""
    chosen = thresholds or FeatureThresholds()
    return _feature_drift(name, reference, live, chosen, chosen.alpha)


def window_drift(
    reference: ReferenceProfile,
    live_features: Mapping[str, FeatureProfile],
    live_prediction: FeatureProfile | None = None,
    *,
    thresholds: DriftThresholds | None = None,
) -> WindowDrift:
    """Judge one window of live traffic against the version's reference profile, feature by feature.

    Features in only one of the two profiles are reported with a note, never raised on; the prediction
    is judged when the window has one. Results come drifted first, then by how far past the threshold.
    """
    chosen = thresholds or DriftThresholds()
    names = list(reference.features) + [n for n in live_features if n not in reference.features]
    pairs = [(n, reference.features.get(n), live_features.get(n), chosen.for_feature(n)) for n in names]
    if live_prediction is not None:
        pairs.append((PREDICTION, reference.prediction, live_prediction, chosen.for_prediction()))
    results = [_feature_drift(n, r, lv, t, t.alpha) for n, r, lv, t in pairs]
    # The family: the p-value of every tested feature (and the prediction), each over its own alpha.
    family = [_p_value(f) / t.alpha for f, (_, _, _, t) in zip(results, pairs, strict=True) if f.test]
    factor = correction_factor(family, chosen.correction)
    if factor != 1.0:
        results = [_judged_at(f, t.alpha * factor) for f, (_, _, _, t) in zip(results, pairs, strict=True)]
    prediction = results.pop() if live_prediction is not None else None
    results.sort(key=lambda f: (not f.drifted, f.test is None, -f.severity))
    drifted_features = tuple(f.feature for f in results if f.drifted)
    tested = sum(1 for f in results if f.test is not None)
    share = len(drifted_features) / tested if tested else None
    return WindowDrift(
        drifted=bool(drifted_features) or bool(prediction and prediction.drifted),
        drifted_features=drifted_features,
        features=tuple(results),
        prediction=prediction,
        correction=chosen.correction,
        drift_share=share,
        drift_share_threshold=chosen.drift_share,
        dataset_drifted=share is not None and share > chosen.drift_share,
    )


def _p_value(result: FeatureDrift) -> float:
    """The p-value of a tested feature's p-value test (KS or chi-square; every tested feature has one)."""
    return next(s.p_value for s in result.stats if s.p_value is not None)


def _judged_at(result: FeatureDrift, alpha: float) -> FeatureDrift:
    """The same feature with its p-value test judged at a corrected alpha (effect sizes unchanged)."""
    if not result.stats:
        return result
    stats = tuple(
        replace(s, threshold=alpha, drifted=s.p_value < alpha) if s.p_value is not None else s for s in result.stats
    )
    decided = next((s for s in stats if s.test == result.test), None)
    return replace(result, stats=stats, drifted=bool(decided and decided.drifted))
