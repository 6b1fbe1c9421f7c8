"""Live windows keep duplicate counts and co-moments that merge across workers like every other count, read
windows stored before them, and the report's quality section turns them into summaries, duplicates, constant
features and correlation changes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from shipyard.core.profile import build_reference_profile
from shipyard.core.signature import FeatureSpec, FeatureType, OutputKind, OutputSpec, Signature
from shipyard.monitoring.json_reading import Fields
from shipyard.monitoring.quality_figures import live_quality_figures
from shipyard.monitoring.quality_stats import LIVE_DUPLICATES_METHOD
from shipyard.monitoring.report import DataQuality
from shipyard.monitoring.window import LiveWindow, Profiler, WindowProfile, merge_all

SIGNATURE = Signature(
    features=(
        FeatureSpec("x", FeatureType.FLOAT),
        FeatureSpec("y", FeatureType.FLOAT),
        FeatureSpec("flat", FeatureType.FLOAT),
        FeatureSpec("group", FeatureType.STRING),
    ),
    output=OutputSpec(OutputKind.REGRESSION, "float64"),
)


def _frame(n: int, seed: int, *, sign: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "y": sign * 0.9 * x + 0.44 * rng.normal(size=n),
            "flat": rng.normal(size=n),
            "group": rng.choice(np.array(["a", "b", "c"], dtype=object), n),
        }
    )


def _serve(window: LiveWindow, frame: pd.DataFrame, batch: int) -> None:
    for start in range(0, len(frame), batch):
        part = frame.iloc[start : start + batch]
        columns = {c: part[c].to_numpy() for c in part.columns}
        window.add_rows(columns, np.zeros(len(part)), None)


def test_two_workers_windows_merge_into_the_figures_of_their_batches() -> None:
    reference = build_reference_profile(_frame(4000, seed=0))
    assert reference.comoments is not None and reference.comoments.features == ("x", "y", "flat")
    assert reference.duplicates == 0
    live = _frame(1200, seed=1, sign=-1.0)
    live["flat"] = 2.5  # a broken feed: one value
    repeated = pd.concat([live.iloc[:100], live.iloc[:100]])  # each row twice, inside one batch
    workers = [LiveWindow(Profiler(SIGNATURE, reference)) for _ in range(2)]
    _serve(workers[0], pd.concat([repeated, live.iloc[100:600]]), batch=300)
    _serve(workers[1], live.iloc[600:], batch=250)
    stored = [WindowProfile.from_dict(json.loads(json.dumps(w.snapshot().to_dict()))) for w in workers]
    merged = merge_all(stored)

    assert merged.duplicate_checked == 1300 and merged.duplicates == 100
    figures = live_quality_figures(merged, reference, SIGNATURE.names)
    quality = DataQuality(**figures)
    assert quality.duplicates is not None and quality.duplicates.method == LIVE_DUPLICATES_METHOD
    assert quality.duplicates.reference_rate == 0.0
    assert quality.constant_features == ("flat",)
    summary = quality.summary("x")
    assert summary is not None and summary.live is not None and summary.reference is not None
    served = pd.concat([repeated, live.iloc[100:]])
    assert summary.live.count == 1300 and abs((summary.live.mean or 0) - served["x"].mean()) < 1e-12
    correlations = quality.correlations
    assert correlations is not None and correlations.live_rows == 1300
    assert [(c.a, c.b) for c in correlations.changed][:1] == [("x", "y")]
    # The JSON round trip keeps every new field.
    assert DataQuality.from_fields(Fields(json.loads(json.dumps(quality.to_dict())), "quality")) == quality


def test_windows_and_reports_stored_before_these_fields_still_read() -> None:
    reference = build_reference_profile(_frame(500, seed=2))
    window = LiveWindow(Profiler(SIGNATURE, reference))
    _serve(window, _frame(100, seed=3), batch=50)
    old = window.snapshot().to_dict()
    for key in ("duplicates", "duplicate_checked", "comoments"):
        old.pop(key)
    read = WindowProfile.from_dict(old)
    assert read.duplicates == 0 and read.duplicate_checked == 0 and read.comoments is None
    merged = read.merge(WindowProfile.from_dict(window.snapshot().to_dict()))
    assert merged.comoments is not None and merged.comoments.n == 100
    figures = live_quality_figures(read, reference, SIGNATURE.names)
    assert figures["duplicates"] is None  # nothing counted: no figure rather than a zero
    correlations = figures["correlations"]
    assert correlations is not None and correlations.note == "no live rows with every tracked feature present"

    legacy = {"rejected_requests": 0, "features": [], "unknown_features": []}
    assert DataQuality.from_fields(Fields(legacy, "quality")) == DataQuality()
