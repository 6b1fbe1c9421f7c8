"""The data-quality figures beyond missing and out-of-range: summaries, constants, duplicates, correlations.

One place assembles them for both reports, so the live window and an offline file are described alike: the
live report passes a merged ``WindowProfile``, the offline comparison its streamed profiles and exact counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

from shipyard.core.comoments import CoMoments
from shipyard.core.profile import FeatureProfile, ReferenceProfile
from shipyard.monitoring.correlations import CorrelationChanges, correlation_changes
from shipyard.monitoring.quality_stats import (
    LIVE_DUPLICATES_METHOD,
    DuplicateRows,
    FeatureSummary,
    constant_features,
    feature_summary,
)
from shipyard.monitoring.window import WindowProfile


class QualityFigures(TypedDict):
    """``DataQuality``'s newer fields, ready to pass as keyword arguments."""

    summaries: tuple[FeatureSummary, ...]
    constant_features: tuple[str, ...]
    duplicates: DuplicateRows | None
    correlations: CorrelationChanges | None


def quality_figures(
    live: Mapping[str, FeatureProfile],
    reference: ReferenceProfile | None,
    names: Sequence[str],
    *,
    duplicates: DuplicateRows | None,
    comoments: CoMoments | None,
) -> QualityFigures:
    """Summaries of ``names`` (live beside the reference), live constant features, and the rest as given."""
    ref_features = reference.features if reference is not None else {}
    summaries = tuple(
        feature_summary(name, live.get(name), ref_features.get(name))
        for name in names
        if name in live or name in ref_features
    )
    present = {name: live[name] for name in names if name in live}
    return QualityFigures(
        summaries=summaries,
        constant_features=constant_features(present),
        duplicates=duplicates,
        correlations=correlation_changes(reference.comoments if reference is not None else None, comoments),
    )


def live_quality_figures(
    window: WindowProfile, reference: ReferenceProfile | None, names: Sequence[str]
) -> QualityFigures:
    """The figures of a merged live window; duplicates as ``LIVE_DUPLICATES_METHOD`` says."""
    duplicates = None
    if window.duplicate_checked:
        duplicates = DuplicateRows(
            rows=window.duplicate_checked,
            duplicates=window.duplicates,
            reference_rows=reference.rows if reference is not None and reference.duplicates is not None else None,
            reference_duplicates=reference.duplicates if reference is not None else None,
            method=LIVE_DUPLICATES_METHOD,
        )
    return quality_figures(window.features, reference, names, duplicates=duplicates, comoments=window.comoments)
